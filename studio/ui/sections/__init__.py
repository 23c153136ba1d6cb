"""The page's five sections, one module each (see `studio/ui/page.py`)."""
