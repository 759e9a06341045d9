"""The data manifold's shape: intrinsic dimension (`dimension`), persistent homology and branches
(`topology`), mesh topology (`mesh`) and nearest-neighbour distances (`neighbours`)."""
