// Writes a small CT series and SEGs made from it by dcmjs' Cornerstone adapter, the code path of OHIF's
// legacy "Export DICOM SEG": segment-major frames, only slices where a segment is present, frames referenced
// through dcmjs' own normalised (descending) stack, bit packing across frame boundaries (5×7 = 35 pixels per
// frame, not a multiple of 8), and with the default rleEncode the old FRACTIONAL 0/255 RLE variant.
// The expected label positions are asserted in DcmjsSegTests.cs.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import dcmjs from "dcmjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const { DicomMetaDictionary, DicomDict } = dcmjs.data;
const rows = 5, columns = 7, slices = 6;
const uid = (suffix) => `1.2.826.0.1.3680043.8.498.77.${suffix}`;

function write(dataset, file) {
  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: dataset.SOPClassUID,
    MediaStorageSOPInstanceUID: dataset.SOPInstanceUID,
    TransferSyntaxUID: "1.2.840.10008.1.2.1",
    ImplementationClassUID: uid(999),
  };
  const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
  dict.dict = DicomMetaDictionary.denaturalizeDataset(dataset);
  fs.writeFileSync(file, Buffer.from(dict.write()));
}

fs.mkdirSync(path.join(here, "series"), { recursive: true });
const images = [];
// OHIF hands dcmjs the stack top (highest z) first.
for (let k = slices - 1; k >= 0; k--) {
  const pixels = new Int16Array(rows * columns).map((_, p) => k * 100 + p);
  const dataset = {
    SOPClassUID: "1.2.840.10008.5.1.4.1.1.2",
    SOPInstanceUID: uid(100 + k),
    StudyInstanceUID: uid(1),
    SeriesInstanceUID: uid(2),
    FrameOfReferenceUID: uid(3),
    Modality: "CT",
    PatientName: "Dcmjs^Fixture",
    PatientID: "DCMJS1",
    StudyDate: "20240101",
    StudyTime: "120000",
    StudyID: "1",
    AccessionNumber: "",
    ReferringPhysicianName: "",
    PatientBirthDate: "",
    PatientSex: "O",
    SeriesNumber: "1",
    InstanceNumber: String(slices - k),
    ImagePositionPatient: [-20, -30, 2.5 * k],
    ImageOrientationPatient: [1, 0, 0, 0, 1, 0],
    PixelSpacing: [0.8, 0.6],
    SliceThickness: 2.5,
    Rows: rows,
    Columns: columns,
    SamplesPerPixel: 1,
    PhotometricInterpretation: "MONOCHROME2",
    BitsAllocated: 16,
    BitsStored: 16,
    HighBit: 15,
    PixelRepresentation: 1,
    RescaleIntercept: 0,
    RescaleSlope: 1,
    PixelData: pixels.buffer,
    _vrMap: { PixelData: "OW" },
  };
  const file = path.join(here, "series", `ct-${slices - k}.dcm`);
  write(dataset, file);
  const bytes = fs.readFileSync(file);
  images.push({ imageId: `wadouri:ct-${slices - k}`, data: { byteArray: new Uint8Array(bytes) } /* its own ArrayBuffer: dcmjs reads .buffer whole */ });
}

// Labelmap slice index i = images[i] (descending z). Segment 1 "Liver" on images 1 and 3, segment 2 "Tumor"
// on images 3 and 5, touching pixels that straddle byte boundaries of the packed stream.
const labelmaps2D = [];
const paint = (i, segment, pixels) => {
  labelmaps2D[i] ??= { pixelData: new Uint16Array(rows * columns), segmentsOnLabelmap: [0] };
  for (const p of pixels) labelmaps2D[i].pixelData[p] = segment;
  if (!labelmaps2D[i].segmentsOnLabelmap.includes(segment)) labelmaps2D[i].segmentsOnLabelmap.push(segment);
};
paint(1, 1, [0, 7, 34]);
paint(3, 1, [8, 9]);
paint(3, 2, [16, 17, 33]);
paint(5, 2, [1]);
const code = { CodeValue: "T-D0050", CodingSchemeDesignator: "SRT", CodeMeaning: "Tissue" };
const segment = (label) => ({
  SegmentedPropertyCategoryCodeSequence: code,
  SegmentLabel: label,
  SegmentAlgorithmType: "MANUAL",
  SegmentAlgorithmName: "OHIF Brush",
  RecommendedDisplayCIELabValue: [34885, 53486, 50171],
  SegmentedPropertyTypeCodeSequence: code,
});
const labelmap3D = { labelmaps2D, metadata: [undefined, segment("Liver"), segment("Tumor")] };

for (const [name, options] of [["seg-binary.dcm", { rleEncode: false }], ["seg-fractional-rle.dcm", { rleEncode: true }]]) {
  const blob = dcmjs.adapters.Cornerstone.Segmentation.generateSegmentation(images, labelmap3D, options);
  fs.writeFileSync(path.join(here, name), Buffer.from(await blob.arrayBuffer()));
}
console.log("wrote series/ and SEGs in", here);
