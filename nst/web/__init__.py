"""The live page of a run (`nst transfer --web`) and the local app (`nst serve`).

    channel.py  one run as pages see it: every iteration's terms (the curves), the latest image
                and study panels (a latest-value slot: a slow page skips images, never queues
                them), the status, and what the pages ask (viewers, panels, pause, stop)
    panels.py   the study panels: Ĝ^l(X) beside Ĝ^l(S), |∂J/∂X|, the content layer's feature maps
    server.py   what both servers share: the token and host guard, the static files, the
                websocket that feeds a page from a channel, a server on a background thread
    live.py     `--web`: the page of the one run in this process
    link.py     `nst serve`'s workers: a thread that posts a run's channel to the server
    uploads.py  uploaded images checked (bytes, type, declared pixels) and stored under our names
    serve.py    `nst serve`'s options; form.py the form's (the CLI's types and messages)
    runs.py     `nst serve`'s bounded queue on nst.batch's Dask engine, a Channel per run
    app.py      `nst serve`'s server: uploads, start, gallery, download, run again, resume, compare

The run never waits on a page: the pages are served by an event loop on another thread (or
process), and the run only writes into its channel. aiohttp is needed only here: `pip install
'nst[web]'`.
"""
