// Reads a SEG with dcmjs' Cornerstone adapter (generateToolState, OHIF's legacy SEG import) onto a series
// and prints, per painted voxel, "SOPInstanceUID row column segment" — so a test can compare where dcmjs
// puts each voxel with where we meant it to be.
// Usage: node read-seg.mjs SEG.dcm SERIES_DIR   (dcmjs resolved from NODE_PATH or ./node_modules)
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(path.join(process.env.DCMJS_HOME ?? process.cwd(), "noop.js"));
const dcmjs = require("dcmjs");
const { DicomMessage, DicomMetaDictionary } = dcmjs.data;

const [segPath, seriesDir] = process.argv.slice(2);
const read = (file) => {
  const bytes = fs.readFileSync(file);
  const dict = DicomMessage.readFile(new Uint8Array(bytes).buffer);
  return DicomMetaDictionary.naturalizeDataset(dict.dict);
};
const images = fs.readdirSync(seriesDir).map((f) => read(path.join(seriesDir, f)));
// The stack as a viewer shows it; any order works as long as the metadata says where each image is.
images.sort((a, b) => b.ImagePositionPatient[2] - a.ImagePositionPatient[2]);
const imageIds = images.map((_, i) => `image:${i}`);
const byId = new Map(imageIds.map((id, i) => [id, images[i]]));
const metadataProvider = {
  get(type, imageId) {
    const ds = byId.get(imageId);
    if (!ds) return undefined;
    switch (type) {
      case "imagePlaneModule":
        return {
          rowCosines: ds.ImageOrientationPatient.slice(0, 3),
          columnCosines: ds.ImageOrientationPatient.slice(3, 6),
          imagePositionPatient: ds.ImagePositionPatient,
          rows: ds.Rows,
          columns: ds.Columns,
          frameOfReferenceUID: ds.FrameOfReferenceUID,
        };
      case "generalSeriesModule":
        return { seriesInstanceUID: ds.SeriesInstanceUID };
      case "sopCommonModule":
        return { sopInstanceUID: ds.SOPInstanceUID, sopClassUID: ds.SOPClassUID };
      case "imagePixelModule":
        return { rows: ds.Rows, columns: ds.Columns };
      case "instance":
        return ds;
      default:
        return undefined;
    }
  },
};
const seg = fs.readFileSync(segPath);
const state = dcmjs.adapters.Cornerstone.Segmentation.generateToolState(imageIds, new Uint8Array(seg).buffer, metadataProvider);
const { Rows: rows, Columns: columns } = images[0];
const labels = new Uint16Array(state.labelmapBufferArray[0]);
const lines = [];
for (let i = 0; i < images.length; i++) {
  for (let p = 0; p < rows * columns; p++) {
    const segment = labels[i * rows * columns + p];
    if (segment) lines.push(`${images[i].SOPInstanceUID} ${Math.floor(p / columns)} ${p % columns} ${segment}`);
  }
}
console.log(lines.join("\n"));
