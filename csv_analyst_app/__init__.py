"""The composition root: the `csv-analyst` command line and the wiring of an embedded stack.

The only package that imports more than one of `analyst_service`, `runner_service` and
`gradio_ui`: the services meet each other over gRPC only.
"""
