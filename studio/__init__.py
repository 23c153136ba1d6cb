"""CHAI Cinematic Prompt Studio.

Caption a reference shot with the CHAI captioner, refine its five aspects, compose them into one
generation prompt and compare the CHAI-finetuned Wan2.2 with the zero-shot Wan2.2 side by side.

The package is importable without torch: heavy modules (captioner, generator) import their
dependencies lazily so that the composer and the command line stay fast.
"""

__version__ = "0.1.0"
