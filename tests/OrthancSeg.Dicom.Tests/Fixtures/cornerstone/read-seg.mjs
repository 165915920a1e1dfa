// Reads a SEG with @cornerstonejs/adapters createLabelmapsFromDICOMBuffer, the SEG import of OHIF 3.13.2
// (@cornerstonejs/adapters and core 5.6.8), onto a series, and prints per painted voxel
// "SOPInstanceUID row column segment". Run from a directory whose node_modules holds those packages
// (ViewersReadOurSegTests installs them): node read-seg.mjs SEG.dcm SERIES_DIR
import fs from "node:fs";
import path from "node:path";
import { metaData } from "@cornerstonejs/core";
import * as adapters from "@cornerstonejs/adapters";
import dcmjs from "dcmjs";

const { DicomMessage, DicomMetaDictionary } = dcmjs.data;
const [segPath, seriesDir] = process.argv.slice(2);
const read = (file) => DicomMetaDictionary.naturalizeDataset(DicomMessage.readFile(new Uint8Array(fs.readFileSync(file)).buffer).dict);
const images = fs.readdirSync(seriesDir).map((f) => read(path.join(seriesDir, f)));
images.sort((a, b) => b.ImagePositionPatient[2] - a.ImagePositionPatient[2]);
const imageIds = images.map((_, i) => `wadouri:image${i}`);
const byId = new Map(imageIds.map((id, i) => [id, images[i]]));
metaData.addProvider((type, imageId) => {
  const ds = byId.get(imageId);
  if (!ds) return undefined;
  switch (type) {
    case "imagePlaneModule":
      return {
        rowCosines: ds.ImageOrientationPatient.slice(0, 3),
        columnCosines: ds.ImageOrientationPatient.slice(3, 6),
        imageOrientationPatient: ds.ImageOrientationPatient,
        imagePositionPatient: ds.ImagePositionPatient,
        rowPixelSpacing: ds.PixelSpacing[0],
        columnPixelSpacing: ds.PixelSpacing[1],
        pixelSpacing: ds.PixelSpacing,
        rows: ds.Rows,
        columns: ds.Columns,
        frameOfReferenceUID: ds.FrameOfReferenceUID,
      };
    case "generalSeriesModule":
      return { seriesInstanceUID: ds.SeriesInstanceUID, modality: ds.Modality };
    case "generalImageModule":
      return { sopInstanceUID: ds.SOPInstanceUID, instanceNumber: ds.InstanceNumber };
    case "sopCommonModule":
      return { sopInstanceUID: ds.SOPInstanceUID, sopClassUID: ds.SOPClassUID };
    case "imagePixelModule":
      return { rows: ds.Rows, columns: ds.Columns, bitsAllocated: 16, bitsStored: 16, highBit: 15, pixelRepresentation: 1, samplesPerPixel: 1, photometricInterpretation: "MONOCHROME2" };
    case "instance":
      return ds;
    default:
      return undefined;
  }
}, 10000);
const seg = fs.readFileSync(segPath);
const result = await adapters.adaptersSEG.Cornerstone3D.Segmentation.createLabelmapsFromDICOMBuffer(imageIds, new Uint8Array(seg).buffer, { get: (t, id) => metaData.get(t, id) });
const { Rows: rows, Columns: columns } = images[0];
const lines = [];
const maps = result.labelMapImages.flat ? result.labelMapImages : [result.labelMapImages];
for (const group of maps) {
  const list = Array.isArray(group) ? group : [group];
  list.forEach((image, i) => {
    const pixels = image.voxelManager ? image.voxelManager.getScalarData() : image.getPixelData();
    for (let p = 0; p < rows * columns; p++) {
      if (pixels[p]) lines.push(`${byId.get(image.referencedImageId)?.SOPInstanceUID ?? i} ${Math.floor(p / columns)} ${p % columns} ${pixels[p]}`);
    }
  });
}
console.log(lines.join("\n"));
