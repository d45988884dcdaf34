"""The desktop viewer. Only this package (and ``paipviewer.__main__``) imports Qt."""
