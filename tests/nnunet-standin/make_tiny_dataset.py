#!/usr/bin/python3
"""Writes a tiny nnU-Net raw dataset for tests that run the stand-ins: make_tiny_dataset.py RAW_ROOT ID NAME CASES.

CASES cases of 8x8x4 int16 CT with uint8 labels 0/1/2 on the same grid, dataset.json as the worker's exporter
writes it. Prints the case keys, one a line."""
import json
import os
import sys

import nibabel as nib
import numpy as np


def main(raw_root: str, dataset_id: int, name: str, count: int) -> None:
    folder = os.path.join(raw_root, f"Dataset{dataset_id:03d}_{name}")
    os.makedirs(os.path.join(folder, "imagesTr"), exist_ok=True)
    os.makedirs(os.path.join(folder, "labelsTr"), exist_ok=True)
    affine = np.diag([0.8, 0.8, 2.5, 1.0])
    cases = [f"{name.lower()}_{i:03d}" for i in range(count)]
    for i, case in enumerate(cases):
        image = (np.arange(8 * 8 * 4).reshape(8, 8, 4) + i).astype(np.int16)
        label = np.zeros((8, 8, 4), np.uint8)
        label[2:5, 2:5, 1:3] = 1
        label[5:7, 5:7, 2] = 2
        nib.save(nib.Nifti1Image(image, affine), os.path.join(folder, "imagesTr", f"{case}_0000.nii.gz"))
        nib.save(nib.Nifti1Image(label, affine), os.path.join(folder, "labelsTr", f"{case}.nii.gz"))
    with open(os.path.join(folder, "dataset.json"), "w", encoding="utf-8") as f:
        json.dump({"channel_names": {"0": "CT"}, "labels": {"background": 0, "liver": 1, "tumor": 2},
                   "numTraining": count, "file_ending": ".nii.gz"}, f, indent=2)
    print("\n".join(cases))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
