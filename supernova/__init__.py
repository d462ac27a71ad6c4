"""supernova: curate reasoning-training data with a versioned probe → score → mix → train → evaluate pipeline."""

__version__ = "0.1.0"
