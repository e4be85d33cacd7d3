"""VGG19 network ops, the readable NumPy reference (SPEC.md "The network").

Legend: I channels in, O channels out, C channels, H×W spatial. One image at a time, laid out
C×H×W. Every function keeps the dtype it is given (float32 in use, float64 for gradient checks).
Only input gradients exist: no weight gradient is ever computed.
"""
import numpy as np

TAPS = [(dy, dx) for dy in range(3) for dx in range(3)]  # the 9 offsets of a 3×3 kernel


def conv3x3(x, w, b):
    # x I×H×W, w O×I×3×3, b O -> O×H×W;  y[o] = b[o] + Σ_{i,dy,dx} w[o,i,dy,dx]·xpad[i,y+dy,x+dx]
    # Written as 9 shifted matmuls (one per kernel tap): no im2col buffer 9× the input's size.
    i, h, wd = x.shape
    xpad = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    y = np.empty((w.shape[0], h * wd), dtype=x.dtype)
    y[:] = b[:, None]
    for dy, dx in TAPS:
        y += w[:, :, dy, dx] @ xpad[:, dy:dy + h, dx:dx + wd].reshape(i, h * wd)
    return y.reshape(-1, h, wd)


def conv3x3_backward_input(dy, w):
    # dy O×H×W, w O×I×3×3 -> dx I×H×W;  dx = Σ_taps shift(w[:,:,tap]ᵀ @ dy)  (the transposed conv)
    o, h, wd = dy.shape
    dxpad = np.zeros((w.shape[1], h + 2, wd + 2), dtype=dy.dtype)
    dy2 = dy.reshape(o, h * wd)
    for ty, tx in TAPS:
        dxpad[:, ty:ty + h, tx:tx + wd] += (w[:, :, ty, tx].T @ dy2).reshape(-1, h, wd)
    return dxpad[:, 1:-1, 1:-1]


def relu(x):
    # a = max(x, 0)
    return np.maximum(x, 0)


def relu_backward(da, a):
    # da, a (the ReLU output) same shape -> dx = da · [a > 0]
    return da * (a > 0)


def conv3x3_relu(x, w, b):
    # x I×H×W -> a O×H×W;  a = relu(conv3x3(x))  (a^l of SPEC.md)
    return relu(conv3x3(x, w, b))


def conv3x3_relu_backward_input(da, a, w):
    # da, a O×H×W -> dx I×H×W;  the ReLU mask comes from the saved output a
    return conv3x3_backward_input(relu_backward(da, a), w)


def maxpool2x2(x):
    # x C×H×W -> C×⌊H/2⌋×⌊W/2⌋;  y[c,i,j] = max of the 2×2 window at (2i, 2j)  (floor: odd edges dropped)
    c, h, w = x.shape
    h2, w2 = h // 2, w // 2
    return x[:, :2 * h2, :2 * w2].reshape(c, h2, 2, w2, 2).max(axis=(2, 4))


def maxpool2x2_backward(dy, x):
    # dy C×⌊H/2⌋×⌊W/2⌋, x C×H×W -> dx C×H×W;  each window's gradient goes to its first maximum
    # (row-major order), so ties never count twice.
    c, h, w = x.shape
    h2, w2 = dy.shape[1:]
    win = x[:, :2 * h2, :2 * w2].reshape(c, h2, 2, w2, 2).transpose(0, 1, 3, 2, 4).reshape(c, h2, w2, 4)
    first = np.argmax(win, axis=3)                                      # C×h2×w2, 0..3
    onehot = (np.arange(4) == first[..., None]) * dy[..., None]         # C×h2×w2×4
    dx = np.zeros_like(x)
    dx[:, :2 * h2, :2 * w2] = onehot.reshape(c, h2, w2, 2, 2).transpose(0, 1, 3, 2, 4).reshape(c, 2 * h2, 2 * w2)
    return dx


def avgpool2x2(x):
    # x C×H×W -> C×⌊H/2⌋×⌊W/2⌋;  y = mean of each 2×2 window
    c, h, w = x.shape
    h2, w2 = h // 2, w // 2
    return x[:, :2 * h2, :2 * w2].reshape(c, h2, 2, w2, 2).mean(axis=(2, 4))


def avgpool2x2_backward(dy, x):
    # dy C×⌊H/2⌋×⌊W/2⌋, x C×H×W -> dx C×H×W;  dx = dy/4 spread over each window
    dx = np.zeros_like(x)
    h2, w2 = dy.shape[1:]
    dx[:, :2 * h2, :2 * w2] = np.repeat(np.repeat(dy / 4, 2, axis=1), 2, axis=2)
    return dx


def adam_step(x, g, m, v, t, lr, beta1, beta2, eps, lo, hi):
    # x, g, m, v flat (N), x m v updated in place; t the 1-based step (numpy or cupy arrays):
    # m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²;  x ← clip(x − lr·(m/(1−β1ᵗ)) / (√(v/(1−β2ᵗ)) + ε), lo, hi)
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    x -= (lr / (1 - beta1 ** t)) * m / ((v / (1 - beta2 ** t)) ** 0.5 + eps)
    x.clip(lo, hi, out=x)
