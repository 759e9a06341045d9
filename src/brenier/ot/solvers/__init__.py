"""Solvers of the Brenier heights h: Monte-Carlo Newton/Adam in any dimension, exact Newton on
power diagrams in 2-D/3-D; their linear algebra, starting heights and checkpoints."""
