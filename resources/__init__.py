"""The app's data: the default models (``models/``) and the sample tiles (``samples/``), installed as
``paipviewer.resources`` and found with :mod:`importlib.resources` (see ``paipviewer/viewer/paths.py``)."""
