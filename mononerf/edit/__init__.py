"""Dynamic-scene editing: compose scenes, remove the moving part, change playback time (``python -m mononerf.edit``)."""
