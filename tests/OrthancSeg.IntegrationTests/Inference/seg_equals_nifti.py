"""Decodes a BINARY DICOM SEG with pydicom onto the series' slices and compares it with a NIfTI label map (nibabel).

Usage: seg_equals_nifti.py SEG.dcm LABELS.nii.gz SOPUID0,SOPUID1,...  (the series' SOP Instance UIDs in slice order)
Prints "equal", or what differs, as the last line.
"""
import sys

import nibabel as nib
import numpy as np
import pydicom


def main() -> None:
    seg = pydicom.dcmread(sys.argv[1])
    expected = np.asanyarray(nib.load(sys.argv[2]).dataobj).astype(np.uint8)  # [column, row, slice]
    slices = {uid: k for k, uid in enumerate(sys.argv[3].split(","))}
    values = {"liver": 1, "tumor": 2}
    segment_value = {item.SegmentNumber: values[item.SegmentLabel.lower()] for item in seg.SegmentSequence}
    frames = seg.pixel_array
    if frames.ndim == 2:
        frames = frames[np.newaxis]
    decoded = np.zeros(expected.shape, np.uint8)
    for frame, group in zip(frames, seg.PerFrameFunctionalGroupsSequence):
        number = group.SegmentIdentificationSequence[0].ReferencedSegmentNumber
        uid = group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        decoded[:, :, slices[uid]][frame.T > 0] = segment_value[number]
    if np.array_equal(decoded, expected):
        print("equal")
    else:
        print(f"differ in {int((decoded != expected).sum())} of {expected.size} voxels")


main()
