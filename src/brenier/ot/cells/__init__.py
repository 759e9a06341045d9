"""Cells W_i(h) of the power diagram of (y, h): the top-k kernel's statistics on samples and the
exact diagram in 2-D/3-D."""
