"""PAIP Viewer's core: everything that is not drawing pixels.

I/O, datasets, preprocessing, tiling, metrics, model files and inference live here and never
import Qt, so the viewer and the trainer share one definition of each (a test enforces it).
"""
