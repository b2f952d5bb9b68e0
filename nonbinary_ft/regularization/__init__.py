"""Regularisation: the L2-SP / L2 penalty that carries all the weight decay of a trial."""

from nonbinary_ft.regularization.l2sp import L2SPRegulariser, Penalty

__all__ = ["L2SPRegulariser", "Penalty"]
