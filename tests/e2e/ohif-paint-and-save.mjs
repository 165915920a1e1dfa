// Paints a segmentation in OHIF's segmentation mode and saves it to the PACS as a user does: adds a labelmap,
// picks the brush with a small radius, paints a short stroke on three slices (scrolling between them with the
// mouse wheel), then Export → DICOM SEG → "Store Segmentation" → Save. OHIF's own code builds the SEG and
// stores it by STOW-RS; nothing is injected through window.*. Driven by the C# integration test
// (OhifPaintAndSaveTests), which then reads the stored SEG back with our reader.
//
//   OHIF_URL        http://127.0.0.1:PORT/ (OHIF with /dicom-web/ proxied to Orthanc)
//   STUDY_UID       StudyInstanceUID of the uploaded series (one series)
//   SLICES          number of images in the series
//   PAINT_AT        three (or more) distinct slice numbers as OHIF shows them, 1-based: "3,6,9"
//   REPORT_NAME     the report name typed into the save dialog (becomes the SEG's SeriesDescription)
//   ARTIFACTS       directory for screenshots
//   BRUSH_RADIUS    brush radius in mm (default 3)
//
// Prints one JSON line on success: {"painted":[{"shown":3,"of":12},...],"stowStatus":200,
// "segSopInstanceUid":"…","listedInStudyBrowser":true,"seconds":…}. Exits non-zero with a message saying what went wrong.
import { join } from 'node:path';
import { env, fail, withOhif } from './ohif.mjs';

const ohifUrl = env('OHIF_URL').replace(/\/$/, '');
const studyUid = env('STUDY_UID');
const slices = Number(env('SLICES'));
const paintAt = env('PAINT_AT').split(',').map(s => Number(s.trim()));
const reportName = env('REPORT_NAME');
const artifacts = env('ARTIFACTS');
const brushRadius = process.env.BRUSH_RADIUS ?? '3';
if (!Number.isInteger(slices) || slices < 1) {
  fail(`SLICES must be a positive integer, not ${process.env.SLICES}`);
}
if (paintAt.some(k => !Number.isInteger(k) || k < 1 || k > slices) || new Set(paintAt).size !== paintAt.length) {
  fail(`PAINT_AT must list distinct slice numbers between 1 and ${slices}, not "${process.env.PAINT_AT}"`);
}

await withOhif('ohif-paint-and-save', artifacts, join(artifacts, 'ohif-paint-failure.png'), async session => {
  const page = session.page;
  session.countFetchedImages(slices);
  const canvas = await session.openSegmentationMode(ohifUrl, studyUid, slices);

  await page.locator('[data-cy=addSegmentation]').first().click();
  await session.pickBrush(brushRadius);
  session.step('labelmap added');

  await session.withDeadline(session.allImagesFetched, 60_000, () => `all ${slices} images to be fetched by WADO-RS (got ${session.fetchedImages()})`);
  session.step(`${session.fetchedImages()} images fetched`);

  const box = await canvas.boundingBox();
  const centre = { x: box.x + box.width / 2, y: box.y + box.height / 2 };
  const painted = [];
  for (const [n, target] of paintAt.entries()) {
    await session.goToSlice(target, centre, slices);
    // A short horizontal stroke a little off centre, shifted per slice so the strokes differ.
    await session.stroke(centre.x - 30 + n * 10, centre.y - 20 + n * 15);
    const shown = await session.currentSlice();
    if (shown.index !== target) {
      fail(`painted on slice ${shown.index}, not ${target}: the stroke scrolled the stack`);
    }
    painted.push({ shown: shown.index, of: shown.count });
    await page.screenshot({ path: join(artifacts, `ohif-paint-slice-${target}.png`) });
    session.step(`painted on slice ${shown.index}/${shown.count}`);
  }

  const saved = await session.saveAsDicomSeg(reportName, artifacts);
  console.log(JSON.stringify({
    painted,
    ...saved,
    seconds: Math.round((Date.now() - session.started) / 100) / 10,
  }));
});
