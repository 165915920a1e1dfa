"""The `seg` benchmark's reference: a BINARY SEG written with numpy and pydicom from the same label map.

Usage: /usr/bin/python3 seg_reference.py DIR COLUMNS ROWS SLICES RUNS
DIR holds labels.raw (uint8, slice-major, as our Volume) and slices.txt ("SOPInstanceUID IPP" per ascending slice).
Builds what our SegmentationWriter builds — one segment per label value, frames only where a value is present,
segment-major, per-frame DerivationImage/SourceImage, PlanePosition, FrameContent and SegmentIdentification, the
referenced series, all frames bit-packed at once (LSB first, as highdicom does) — and writes it to Part 10 bytes in
memory. Prints one line per run and "median_ms M"; the time covers everything from the label map to the bytes.
"""

import io
import sys
import time

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT = "1.2.840.10008.5.1.4.1.1.2"
SEG = "1.2.840.10008.5.1.4.1.1.66.4"
NAMES = {1: "liver", 2: "tumor", 3: "vessel"}


def code(value, scheme, meaning):
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return Sequence([item])


def write(labels, slices):
    k_count, rows, columns = labels.shape
    frames, masks = [], []
    values = [v for v in range(1, 256) if v in NAMES]
    for number, value in enumerate(values, start=1):
        per_slice = (labels == value).reshape(k_count, -1).any(axis=1)
        for k in np.nonzero(per_slice)[0]:
            frames.append((number, int(k)))
            masks.append(labels[k] == value)
    packed = np.packbits(np.stack(masks).ravel(), bitorder="little").tobytes()
    if len(packed) % 2:
        packed += b"\0"

    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = SEG, generate_uid()
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = "SEG", generate_uid(), 300, 1
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, columns, len(frames)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 1, 1, 0, 0
    ds.SegmentationType, ds.SegmentsOverlap = "BINARY", "NO"
    segments = []
    for number, value in enumerate(values, start=1):
        item = Dataset()
        item.SegmentNumber, item.SegmentLabel = number, NAMES[value]
        item.SegmentAlgorithmType, item.SegmentAlgorithmName = "AUTOMATIC", "benchmark"
        item.SegmentedPropertyCategoryCodeSequence = code("85756007", "SCT", "Tissue")
        item.SegmentedPropertyTypeCodeSequence = code("85756007", "SCT", "Tissue")
        item.RecommendedDisplayCIELabValue = [32768, 32768, 32768]
        segments.append(item)
    ds.SegmentSequence = Sequence(segments)
    referenced = Dataset()
    referenced.SeriesInstanceUID = "1.2.3"
    instances = []
    for uid, _ in slices:
        item = Dataset()
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = CT, uid
        instances.append(item)
    referenced.ReferencedInstanceSequence = Sequence(instances)
    ds.ReferencedSeriesSequence = Sequence([referenced])
    shared = Dataset()
    orientation, measures = Dataset(), Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    measures.PixelSpacing, measures.SliceThickness, measures.SpacingBetweenSlices = [0.977, 0.977], 1.25, 1.25
    shared.PlaneOrientationSequence, shared.PixelMeasuresSequence = Sequence([orientation]), Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per_frame = []
    for number, k in frames:
        uid, ipp = slices[k]
        source = Dataset()
        source.ReferencedSOPClassUID, source.ReferencedSOPInstanceUID = CT, uid
        source.PurposeOfReferenceCodeSequence = code("121322", "DCM", "Source image for image processing operation")
        source.SpatialLocationsPreserved = "YES"
        derivation = Dataset()
        derivation.DerivationCodeSequence = code("113076", "DCM", "Segmentation")
        derivation.SourceImageSequence = Sequence([source])
        content, position, segment = Dataset(), Dataset(), Dataset()
        content.DimensionIndexValues = [number, k + 1]
        position.ImagePositionPatient = ipp
        segment.ReferencedSegmentNumber = number
        item = Dataset()
        item.DerivationImageSequence = Sequence([derivation])
        item.FrameContentSequence = Sequence([content])
        item.PlanePositionSequence = Sequence([position])
        item.SegmentIdentificationSequence = Sequence([segment])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    ds.PixelData = packed
    ds["PixelData"].VR = "OB"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = SEG, ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.is_little_endian, ds.is_implicit_VR = True, False
    out = io.BytesIO()
    dcmwrite(out, ds, write_like_original=False)
    return out.getvalue(), len(frames)


def main():
    folder, columns, rows, slice_count, runs = sys.argv[1], *map(int, sys.argv[2:6])
    labels = np.fromfile(f"{folder}/labels.raw", dtype=np.uint8).reshape(slice_count, rows, columns)
    slices = []
    with open(f"{folder}/slices.txt", encoding="ascii") as lines:
        for line in lines:
            uid, ipp = line.split()
            slices.append((uid, ipp.split("\\")))
    write(labels, slices)  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        data, frame_count = write(labels, slices)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    print(f"pydicom reference: {frame_count} frames, {len(data) / 1e6:.1f} MB, fastest {times[0]:.0f} ms")
    print(f"median_ms {times[len(times) // 2]:.1f}")


if __name__ == "__main__":
    main()
