"""Writes, with pydicom, a CT series and SEGs shaped like highdicom's and OHIF 3.13's output.

Usage: make_series_and_segs.py OUT_DIR

Series: 6 axial slices of 5x7 pixels, Implicit VR Little Endian, instance numbers running head to feet
(z = 12.5 down to 0), RescaleIntercept -1024, value = 1024 + 100*k + pixel index for slice k (ascending z).

highdicom-style BINARY SEG (highdicom itself has no Debian package): Explicit VR LE, SCT codes, segment-major
frames ordered by position, DimensionIndexValues = (segment, rank of position), frames packed together with
numpy.packbits(bitorder="little") and an odd length padded with b"0" (0x30) as highdicom does.

OHIF 3.13-style LABELMAP SEG: SOP class 1.2.840.10008.5.1.4.1.1.66.7, RLE Lossless, 8-bit values = segment
number, one frame per painted slice in descending z, references without SOP class, no FrameContentSequence or
SegmentIdentificationSequence, ReferencedSeriesSequence listing only painted slices, SliceThickness = distance
between stored frames, segments named "Segment 1", "Segment 2".
"""
import os
import sys

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless

OUT = sys.argv[1]
ROWS, COLS, SLICES = 5, 7, 6
ROOT = "1.2.826.0.1.3680043.8.498.88."
STUDY, SERIES, FOR = ROOT + "1", ROOT + "2", ROOT + "3"
CT = "1.2.840.10008.5.1.4.1.1.2"


def sop(k):
    return f"{ROOT}100.{k}"


def ipp(k):
    return [-30.0, -40.0, 2.5 * k]


def save(ds, name, syntax):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = syntax
    ds.file_meta = meta
    ds.is_little_endian = True
    ds.is_implicit_VR = syntax == ImplicitVRLittleEndian
    ds.save_as(os.path.join(OUT, name), write_like_original=False)


def code(value, scheme, meaning):
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return Sequence([item])


os.makedirs(os.path.join(OUT, "series"), exist_ok=True)
for k in range(SLICES):
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = CT, sop(k)
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = STUDY, SERIES, FOR
    ds.Modality, ds.PatientName, ds.PatientID = "CT", "Pydicom^Fixture", "PYD1"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.InstanceNumber = SLICES - k
    ds.ImagePositionPatient, ds.ImageOrientationPatient = ipp(k), [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing, ds.SliceThickness = [0.8, 0.6], 2.5
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = ROWS, COLS, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    ds.PixelData = (1024 + 100 * k + np.arange(ROWS * COLS, dtype=np.uint16)).tobytes()
    save(ds, f"series/ct-{SLICES - k}.dcm", ImplicitVRLittleEndian)


def seg_common(ds, sop_class, kind):
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, pydicom.uid.generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = STUDY, pydicom.uid.generate_uid(), FOR
    ds.Modality, ds.PatientName, ds.PatientID = "SEG", "Pydicom^Fixture", "PYD1"
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = ROWS, COLS, 1, "MONOCHROME2"
    ds.SegmentationType = kind
    shared = Dataset()
    orientation = Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    shared.PlaneOrientationSequence = Sequence([orientation])
    return shared


def frame_item(k, segment=None, with_class=True, dimension=None):
    item = Dataset()
    source = Dataset()
    if with_class:
        source.ReferencedSOPClassUID = CT
    source.ReferencedSOPInstanceUID = sop(k)
    source.PurposeOfReferenceCodeSequence = code("121322", "DCM", "Source image for image processing operation")
    source.SpatialLocationsPreserved = "YES"
    derivation = Dataset()
    derivation.DerivationCodeSequence = code("113076", "DCM", "Segmentation")
    derivation.SourceImageSequence = Sequence([source])
    item.DerivationImageSequence = Sequence([derivation])
    position = Dataset()
    position.ImagePositionPatient = ipp(k)
    item.PlanePositionSequence = Sequence([position])
    if dimension is not None:
        content = Dataset()
        content.DimensionIndexValues = dimension
        item.FrameContentSequence = Sequence([content])
    if segment is not None:
        ident = Dataset()
        ident.ReferencedSegmentNumber = segment
        item.SegmentIdentificationSequence = Sequence([ident])
    return item


def mask(*pixels):
    m = np.zeros(ROWS * COLS, dtype=np.uint8)
    m[list(pixels)] = 1
    return m


# highdicom-style BINARY: liver (segment 1) on slices 1..4, tumour (segment 2) on slices 2, 3, 5 -> 7 frames,
# 245 bits, 31 bytes, padded with b"0".
ds = Dataset()
shared = seg_common(ds, "1.2.840.10008.5.1.4.1.1.66.4", "BINARY")
measures = Dataset()
measures.PixelSpacing, measures.SliceThickness, measures.SpacingBetweenSlices = [0.8, 0.6], 2.5, 2.5
shared.PixelMeasuresSequence = Sequence([measures])
ds.SharedFunctionalGroupsSequence = Sequence([shared])
ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 1, 1, 0, 0
ds.SegmentsOverlap = "NO"
segments = []
for number, label, type_code in [(1, "Liver", code("10200004", "SCT", "Liver")), (2, "Liver tumour", code("4147007", "SCT", "Mass"))]:
    s = Dataset()
    s.SegmentNumber, s.SegmentLabel, s.SegmentAlgorithmType, s.SegmentAlgorithmName = number, label, "AUTOMATIC", "test-model"
    s.SegmentedPropertyCategoryCodeSequence = code("123037004", "SCT", "Anatomical Structure")
    s.SegmentedPropertyTypeCodeSequence = type_code
    segments.append(s)
ds.SegmentSequence = Sequence(segments)
frames, items = [], []
plan = [(1, k, mask(k, 30 + k)) for k in (1, 2, 3, 4)] + [(2, k, mask(10 + k)) for k in (2, 3, 5)]
for rank, (segment, k, m) in enumerate(plan):
    frames.append(m)
    items.append(frame_item(k, segment, dimension=[segment, k + 1]))
ds.PerFrameFunctionalGroupsSequence = Sequence(items)
ds.NumberOfFrames = len(frames)
packed = np.packbits(np.concatenate(frames), bitorder="little").tobytes()
if len(packed) % 2:
    packed += b"0"
ds.PixelData = packed
ds["PixelData"].VR = "OB"
referenced = Dataset()
referenced.SeriesInstanceUID = SERIES
referenced.ReferencedInstanceSequence = Sequence([])
for k in range(SLICES):
    r = Dataset()
    r.ReferencedSOPClassUID, r.ReferencedSOPInstanceUID = CT, sop(k)
    referenced.ReferencedInstanceSequence.append(r)
ds.ReferencedSeriesSequence = Sequence([referenced])
save(ds, "seg-highdicom-style.dcm", ExplicitVRLittleEndian)

# OHIF 3.13-style LABELMAP, RLE: slice 4 holds segments 1 and 2, slice 1 holds segment 2; descending z.
ds = Dataset()
shared = seg_common(ds, "1.2.840.10008.5.1.4.1.1.66.7", "LABELMAP")
measures = Dataset()
measures.PixelSpacing, measures.SliceThickness = [0.8, 0.6], 7.5
shared.PixelMeasuresSequence = Sequence([measures])
ds.SharedFunctionalGroupsSequence = Sequence([shared])
ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
segments = []
for number in (1, 2):
    s = Dataset()
    s.SegmentNumber, s.SegmentLabel, s.SegmentAlgorithmType, s.SegmentAlgorithmName = number, f"Segment {number}", "MANUAL", "OHIF Brush"
    s.SegmentedPropertyCategoryCodeSequence = code("T-D0050", "SRT", "Tissue")
    s.SegmentedPropertyTypeCodeSequence = code("T-D0050", "SRT", "Tissue")
    segments.append(s)
ds.SegmentSequence = Sequence(segments)
dimension = Dataset()
dimension.DimensionIndexPointer = 0x0062000B
dimension.FunctionalGroupPointer = 0x0062000A
ds.DimensionIndexSequence = Sequence([dimension])
slice4 = np.zeros(ROWS * COLS, dtype=np.uint8)
slice4[[0, 1, 2]] = 1
slice4[[20, 21]] = 2
slice1 = np.zeros(ROWS * COLS, dtype=np.uint8)
slice1[34] = 2
ds.PerFrameFunctionalGroupsSequence = Sequence([frame_item(4, with_class=False), frame_item(1, with_class=False)])
ds.NumberOfFrames = 2
referenced = Dataset()
referenced.SeriesInstanceUID = SERIES
referenced.ReferencedInstanceSequence = Sequence([])
for k in (4, 1):
    r = Dataset()
    r.ReferencedSOPInstanceUID = sop(k)
    referenced.ReferencedInstanceSequence.append(r)
ds.ReferencedSeriesSequence = Sequence([referenced])
ds.PixelData = np.concatenate([slice4, slice1]).tobytes()
ds.file_meta = FileMetaDataset()
ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
ds.is_little_endian, ds.is_implicit_VR = True, False
ds.compress(RLELossless)
save(ds, "seg-ohif-labelmap-rle.dcm", RLELossless)
print("ok")
