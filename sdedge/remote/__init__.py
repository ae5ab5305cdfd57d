"""Remote engines as models: a REMOTE_ENGINES entry is a model that runs on another server.

    models.py         RemoteModel, remote_models(settings): the entries, credentials resolved, for the registry
    a1111_client.py   an AUTOMATIC1111-compatible server (another sdedge, A1111, Forge): txt2img/img2img,
                      progress, interrupt
    stability_client.py  the Stability AI REST API (v2beta stable-image generate and edit/inpaint)
    source.py         a remote model as a worker's engine source (the node runs one worker per remote model)

Jobs for a remote model go through the same queue, status, cancel and file storage as local ones: the
job's `model` column names the remote id, and only that model's worker claims it. Failures of the remote
(unreachable, refused, an error answer) fail the job with `remote_engine_failed` and the remote's reason.
"""
