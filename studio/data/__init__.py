"""Package data: the CHAI vocabulary (vocabulary.json), loaded with importlib.resources."""
