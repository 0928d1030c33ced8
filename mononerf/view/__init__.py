"""Space-time viewer: orbit a trained run's scene in the browser and scrub its time (``python -m mononerf.view``)."""
