// Writes SEGs with @cornerstonejs/adapters 5.6.8 generateSegmentation, the export code of OHIF 3.13.2, from
// the dcmjs fixture series: LABELMAP + RLE Lossless (OHIF's default store) and BINARY Explicit VR LE
// (OHIF configured with defaultMode 'bitmap'). The stack is given top (highest z) first, as OHIF shows it.
// Usage, after npm ci in this folder (package-lock.json pins @cornerstonejs/adapters, core and tools 5.6.8 and
// @babel/runtime 7.29.7): node make-ohif-segs.mjs ../dcmjs/series . (the expected voxels are in OhifSegTests.cs)
import fs from "node:fs";
import path from "node:path";
import * as adapters from "@cornerstonejs/adapters";
import dcmjs from "dcmjs";

const { DicomMessage, DicomMetaDictionary } = dcmjs.data;
const [seriesDir, outDir] = process.argv.slice(2);
const read = (file) => DicomMetaDictionary.naturalizeDataset(DicomMessage.readFile(new Uint8Array(fs.readFileSync(file)).buffer).dict);
const datasets = fs.readdirSync(seriesDir).map((f) => read(path.join(seriesDir, f)));
datasets.sort((a, b) => b.ImagePositionPatient[2] - a.ImagePositionPatient[2]);
const byId = new Map(datasets.map((ds, i) => [`wadors:image${i}`, ds]));
const images = [...byId.entries()].map(([imageId, ds]) => ({ imageId, voxelManager: { getScalarData: () => new Int16Array(ds.PixelData[0] ?? ds.PixelData) } }));
const pick = (ds, keys) => Object.fromEntries(keys.filter((k) => ds[k] !== undefined).map((k) => [k, ds[k]]));
const metadata = {
  get(type, imageId) {
    const ds = byId.get(imageId);
    if (!ds) return undefined;
    switch (type) {
      case "StudyData":
        return pick(ds, ["StudyInstanceUID", "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName"]);
      case "SeriesData":
        return pick(ds, ["SeriesInstanceUID", "Modality", "SeriesNumber"]);
      case "ImageData": {
        const { PixelData, ...rest } = ds;
        return rest;
      }
      case "imagePlaneModule":
        return {
          imagePositionPatient: ds.ImagePositionPatient,
          imageOrientationPatient: ds.ImageOrientationPatient,
          rowCosines: ds.ImageOrientationPatient.slice(0, 3),
          columnCosines: ds.ImageOrientationPatient.slice(3, 6),
          rows: ds.Rows,
          columns: ds.Columns,
          frameOfReferenceUID: ds.FrameOfReferenceUID,
        };
      default:
        return undefined;
    }
  },
};
const n = datasets[0].Rows * datasets[0].Columns;
// Stack index i = datasets[i] (descending z): segment 1 on i = 1 (pixels 0, 7, 34) and i = 3 (8, 9);
// segment 2 on i = 3 (16, 17, 33) and i = 5 (1).
const labelmaps2D = [];
const paint = (i, segment, pixels) => {
  labelmaps2D[i] ??= { pixelData: new Uint8Array(n), segmentsOnLabelmap: [], rows: datasets[0].Rows, columns: datasets[0].Columns };
  for (const p of pixels) labelmaps2D[i].pixelData[p] = segment;
  if (!labelmaps2D[i].segmentsOnLabelmap.includes(segment)) labelmaps2D[i].segmentsOnLabelmap.push(segment);
};
paint(1, 1, [0, 7, 34]);
paint(3, 1, [8, 9]);
paint(3, 2, [16, 17, 33]);
paint(5, 2, [1]);
const tissue = { CodeValue: "T-D0050", CodingSchemeDesignator: "SRT", CodeMeaning: "Tissue" };
const segment = (number) => ({
  SegmentNumber: number,
  SegmentLabel: `Segment ${number}`,
  SegmentAlgorithmType: "MANUAL",
  SegmentAlgorithmName: "OHIF Brush",
  RecommendedDisplayCIELabValue: [34885, 53486, 50171],
  SegmentedPropertyCategoryCodeSequence: tissue,
  SegmentedPropertyTypeCodeSequence: tissue,
});
const labelmap3D = { labelmaps2D, metadata: [undefined, segment(1), segment(2)] };
const write = (name, options) => {
  const result = adapters.adaptersSEG.Cornerstone3D.Segmentation.generateSegmentation(images, labelmap3D, metadata, { SeriesDescription: "Labelmap", ...options });
  const buffer = dcmjs.data.datasetToBuffer(result.dataset);
  fs.writeFileSync(path.join(outDir, name), Buffer.from(buffer));
};
write("seg-ohif-labelmap-rle.dcm", { sopClassUID: "1.2.840.10008.5.1.4.1.1.66.7", transferSyntaxUid: "1.2.840.10008.1.2.5" });
write("seg-ohif-bitmap.dcm", { sopClassUID: "1.2.840.10008.5.1.4.1.1.66.4", transferSyntaxUid: "1.2.840.10008.1.2.1" });
console.log("wrote", outDir);
