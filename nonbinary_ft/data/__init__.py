"""Target data sets: readers, splits, timm transforms and DataLoaders.

Typical use::

    train_tf, eval_tf = create_transforms(cfg.data, model, cfg.model.image_size)
    splits = build_datasets(cfg.data, train_tf, eval_tf)
    train_loader, val_loader, test_loader = build_loaders(splits, cfg.data, seed)
"""

from nonbinary_ft.data.build import (
    READERS,
    build_datasets,
    list_readers,
    read_samples,
    source_sample_error,
)
from nonbinary_ft.data.dataset import DataSplits, ImageList, SampleSplits, load_rgb
from nonbinary_ft.data.digits import digits_images
from nonbinary_ft.data.loaders import build_loaders
from nonbinary_ft.data.synthetic import COLOURS, SHAPES, class_names, generate_images
from nonbinary_ft.data.transforms import create_transforms, model_data_config

__all__ = [
    "DataSplits",
    "SampleSplits",
    "ImageList",
    "create_transforms",
    "model_data_config",
    "build_datasets",
    "build_loaders",
    "read_samples",
    "source_sample_error",
    "READERS",
    "list_readers",
    "load_rgb",
    "generate_images",
    "class_names",
    "SHAPES",
    "COLOURS",
    "digits_images",
]
