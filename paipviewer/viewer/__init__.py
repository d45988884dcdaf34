"""The viewer's state and policy, without Qt (napari's ``components``): what is open, what is known
about it, what should run next and how it is drawn as pixels. ``paipviewer.ui`` only renders it."""
