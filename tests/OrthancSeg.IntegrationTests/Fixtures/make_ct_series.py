"""Writes a small synthetic CT series: a water cylinder holding a dense sphere, one file per slice.

Usage: /usr/bin/python3 make_ct_series.py OUTPUT_DIR SLICES PATIENT_ID STUDY_DESCRIPTION [SIZE]
Prints the StudyInstanceUID and the SeriesInstanceUID, one per line. The images have structure
(air, water, a sphere whose cross-section changes along z), so a viewer that renders them shows
more than a flat field, and a blank viewport is told apart from a rendered one.
"""

import datetime
import os
import sys

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

SIZE = 64
SPACING = 2.0
THICKNESS = 2.5


def slice_pixels(index: int, slices: int) -> np.ndarray:
    # Geometry in units of a 64-pixel image, so a bigger SIZE shows the same phantom, finer.
    scale = SIZE / 64
    y, x = (np.mgrid[0:SIZE, 0:SIZE].astype(np.float64) - (SIZE - 1) / 2) / scale
    hu = np.full((SIZE, SIZE), -1000.0)
    hu[x * x + y * y <= 28**2] = 0.0
    z = index - (slices - 1) / 2
    radius2 = 14**2 - (z * 2.0) ** 2
    if radius2 > 0:
        hu[(x - 4) ** 2 + (y + 3) ** 2 <= radius2] = 400.0 + 20.0 * index
    hu += np.sin(x / 3.0) * 15.0
    return (hu + 1024.0).astype(np.int16)


def main() -> int:
    global SIZE, SPACING
    if len(sys.argv) not in (5, 6):
        print(__doc__, file=sys.stderr)
        return 2
    output, slices, patient_id, description = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    if len(sys.argv) == 6:
        SIZE = int(sys.argv[5])
        SPACING = 128.0 / SIZE
    os.makedirs(output, exist_ok=True)
    study_uid, series_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    today = datetime.date.today().strftime("%Y%m%d")
    for index in range(slices):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        path = os.path.join(output, f"slice{index + 1:03d}.dcm")
        ds = FileDataset(path, {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.PatientName = f"Phantom^{patient_id}"
        ds.PatientID = patient_id
        ds.PatientBirthDate = "19700101"
        ds.PatientSex = "O"
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = today
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
        ds.AccessionNumber = "OSEG1"
        ds.StudyID = "1"
        ds.StudyDescription = description
        ds.SeriesDescription = "Synthetic phantom"
        ds.Modality = "CT"
        ds.Manufacturer = "OrthancSeg tests"
        ds.BodyPartExamined = "ABDOMEN"
        ds.SeriesNumber = 1
        ds.InstanceNumber = index + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient = [-(SIZE - 1) * SPACING / 2, -(SIZE - 1) * SPACING / 2, index * THICKNESS]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SliceLocation = index * THICKNESS
        ds.SliceThickness = THICKNESS
        ds.PixelSpacing = [SPACING, SPACING]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = ds.Columns = SIZE
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        ds.WindowCenter = 40
        ds.WindowWidth = 400
        ds.PixelData = slice_pixels(index, slices).tobytes()
        ds.save_as(path, write_like_original=False)
    print(study_uid)
    print(series_uid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
