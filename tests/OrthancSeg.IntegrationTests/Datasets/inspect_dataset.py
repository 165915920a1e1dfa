"""Reads an nnU-Net raw dataset with nibabel, as nnU-Net's NibabelIO would, and prints what the tests assert on as JSON."""
import glob
import json
import os
import sys

import nibabel as nib
import numpy as np


def main(root: str) -> None:
    with open(os.path.join(root, "dataset.json"), encoding="utf-8") as f:
        dataset = json.load(f)
    cases = {}
    for image_path in sorted(glob.glob(os.path.join(root, "imagesTr", "*_0000.nii.gz"))):
        case = os.path.basename(image_path)[: -len("_0000.nii.gz")]
        image = nib.load(image_path)
        label = nib.load(os.path.join(root, "labelsTr", case + ".nii.gz"))
        i = np.asanyarray(image.dataobj)
        lab = np.asanyarray(label.dataobj)
        cases[case] = {
            "shape": list(i.shape),
            "label_shape": list(lab.shape),
            "affine": image.affine.tolist(),
            "affines_equal": bool(np.array_equal(image.affine, label.affine)),
            "zooms_equal": bool(np.allclose(image.header.get_zooms(), label.header.get_zooms())),
            "sform_equals_qform": bool(np.allclose(image.get_sform(), image.get_qform(), atol=1e-4)),
            "image_dtype": str(i.dtype),
            "label_dtype": str(lab.dtype),
            "label_values": sorted(int(v) for v in np.unique(lab)),
            "painted_slices": [k for k in range(lab.shape[2]) if lab[:, :, k].any()],
            # Column 3, row 5 of every slice: the test series store 100*slice + 3*row + column.
            "voxel_c3_r5": [int(i[3, 5, k]) for k in range(i.shape[2])],
        }
    json.dump({"dataset": dataset, "cases": cases}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
