"""Scoring generated samples: point-cloud metrics (`point_metrics`), the data's own classifier
(`classifier`), image metrics in its features (`image_metrics`) and the side-by-side comparison of
AE-OT with the image baselines (`evaluate`)."""
