"""Weight-sharing supernets: elastic layers, the OFA-family supernet, progressive shrinking, image data."""
from hwnas.supernet.data import CIFARDataModule, DigitsDataModule, ImageDataModule, ImageFolderDataModule
from hwnas.supernet.evaluation import evaluate_subnet, recalibrate_bn, resize, top1_accuracy
from hwnas.supernet.ofa import (OFASupernet, largest_arch, load_supernet, median_arch, save_supernet, smallest_arch,
                                space_from_spec, space_spec)
from hwnas.supernet.schedule import Phase, PhaseSampler, Schedule, parse_phases
from hwnas.supernet.shrinking import ProgressiveShrinking

__all__ = ["OFASupernet", "ProgressiveShrinking", "Phase", "PhaseSampler", "Schedule", "parse_phases",
           "ImageDataModule", "DigitsDataModule", "CIFARDataModule", "ImageFolderDataModule", "recalibrate_bn",
           "resize", "top1_accuracy", "evaluate_subnet", "save_supernet", "load_supernet", "space_spec",
           "space_from_spec", "largest_arch", "smallest_arch", "median_arch"]
