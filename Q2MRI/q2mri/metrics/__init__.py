"""Accuracy metrics of the papers, agreement statistics and ROI statistics."""
from .image import mae, mpe, pearson, psnr, relative_l1, ssim, evaluate
from .agreement import BlandAltman, bland_altman, ccc, ccc_bootstrap
from .roi import roi_statistics, ROI_COLUMNS

__all__ = ["mae", "mpe", "pearson", "psnr", "relative_l1", "ssim", "evaluate", "BlandAltman", "bland_altman",
           "ccc", "ccc_bootstrap", "roi_statistics", "ROI_COLUMNS"]
