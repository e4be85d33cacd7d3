"""How many iterations each scale of a coarse-to-fine run gets (SPEC.md "Optimisation" leaves it open).

`iterations=N` (an explicit `--iterations N`): exactly N iterations at every scale (fewer only if
L-BFGS stops on its own: J no longer decreases measurably). `iterations="auto"` (the default,
`--iterations auto`): the automatic schedule, made for time to a picture: most iterations at the
coarse scales, where one costs a quarter of one at the finest, few at the finest, which mostly
sharpens. Each scale runs until its cap (FIRST_CAP at the coarsest, FINEST_CAP at the finest) or
until it stops paying: the relative decrease of J per iteration over the last WINDOW iterations,
divided by the iteration's cost (its pixel count relative to the finest scale's), falls below
AUTO_TOL. bench/RESULTS.md "Time to a picture" has the measurements behind the numbers.
"""

FIRST_CAP, MIDDLE_CAP, FINEST_CAP = 70, 20, 24    # the coarsest scale, any between, the finest
WINDOW = 5                   # iterations over which the progress rule measures J's decrease
AUTO_TOL = 2e-3              # relative decrease of J per iteration, per finest-scale cost


def auto_rule():
    # the automatic schedule's constants, as a checkpoint records them (nst.run.job.automatic_rules)
    return {"caps": [FIRST_CAP, MIDDLE_CAP, FINEST_CAP], "window": WINDOW, "tol": AUTO_TOL}


def iteration_caps(n_scales, iterations):
    # -> the most iterations each scale may run, coarse to fine: N everywhere, or the automatic
    # caps (a single scale gets the first scale's: it must build the style from the start)
    if iterations != "auto":
        return [int(iterations)] * n_scales
    return [FIRST_CAP] + [MIDDLE_CAP] * max(n_scales - 2, 0) + [FINEST_CAP] * (n_scales > 1)


def cost(side, final_side):
    # one iteration's cost at `side` relative to one at the finest scale: the pixel count ratio
    return (side / final_side) ** 2


def stops_paying(js, side, final_side, tol=None, window=None):
    # js: J after each iteration of this scale so far. True when the mean relative decrease per
    # iteration over the last `window`, per unit of cost, is below tol:
    #   (J[-window-1] − J[-1]) / (window · J[-1]) < tol · cost(side)
    tol, window = AUTO_TOL if tol is None else tol, WINDOW if window is None else window
    if len(js) <= window:
        return False
    old, new = js[-window - 1], js[-1]
    return (old - new) / (window * abs(new)) < tol * cost(side, final_side)
