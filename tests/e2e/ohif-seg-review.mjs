// Reviews a model's SEG in OHIF's segmentation mode as an annotator does: the study browser lists the SEG, a double
// click loads it over the images (answering OHIF's "open this Segmentation?" prompt), the segmentation panel shows each
// segment's name and colour, and the viewport shows the overlay; then the annotator corrects it with the brush on one
// slice and saves it (Export → DICOM SEG → Save). OHIF's own code loads and stores the SEG; nothing is injected
// through window.*. Driven by the C# integration test (OhifModelSegTests).
//
//   OHIF_URL        http://127.0.0.1:PORT/ (OHIF with /dicom-web/ proxied to Orthanc)
//   STUDY_UID       StudyInstanceUID of the study holding the images and the SEG
//   SLICES          number of images in the image series
//   SEG_DESCRIPTION the SEG's SeriesDescription, as the study browser lists it
//   SEGMENTS        JSON: [{"name":"liver","rgb":[221,130,101]},...] in segment order, the colours the SEG recommends
//   SHOW_SLICE      a slice (1-based, as OHIF shows it) where the SEG has content, for the overlay check and screenshot
//   PAINT_AT        the slice (1-based, as OHIF shows it) to paint on
//   REPORT_NAME     the report name typed into the save dialog (becomes the saved SEG's SeriesDescription)
//   ARTIFACTS       directory for screenshots
//
// Prints one JSON line on success: {"listed":true,"segments":[{"name":"liver","colour":[r,g,b]}],"overlay":0.03,
// "errors":[],"painted":{"shown":4,"of":12},"stowStatus":200,"segSopInstanceUid":"…","listedInStudyBrowser":true}.
import { join } from 'node:path';
import { env, fail, withOhif } from './ohif.mjs';

const ohifUrl = env('OHIF_URL').replace(/\/$/, '');
const studyUid = env('STUDY_UID');
const slices = Number(env('SLICES'));
const segDescription = env('SEG_DESCRIPTION');
const segments = JSON.parse(env('SEGMENTS'));
const showSlice = Number(env('SHOW_SLICE'));
const paintAt = Number(env('PAINT_AT'));
const reportName = env('REPORT_NAME');
const artifacts = env('ARTIFACTS');

await withOhif('ohif-seg-review', artifacts, join(artifacts, 'ohif-seg-review-failure.png'), async session => {
  const page = session.page;
  session.countFetchedImages(slices);
  const canvas = await session.openSegmentationMode(ohifUrl, studyUid, slices);

  // 1. The study browser lists the SEG under its series description.
  const label = page.locator('[data-cy=series-description-label]', { hasText: segDescription }).first();
  await label.waitFor({ state: 'attached', timeout: 30_000 })
    .catch(async () => fail(`the study browser lists no series "${segDescription}"; it lists: ${(await page.locator('[data-cy=series-description-label]').allInnerTexts()).join(', ')}`));
  session.step(`study browser lists "${segDescription}"`);

  // 2. A double click on its thumbnail shows it in the viewport as a preview, with a "SEG [LOAD]" badge (or, in some
  // configurations, the prompt "Do you want to open this Segmentation?"); LOAD (or Yes) hydrates it into an editable
  // segmentation, and the badge goes.
  const thumbnail = page.locator('[data-cy=study-browser-thumbnail], [data-cy=study-browser-thumbnail-no-image]', { has: label }).first();
  await thumbnail.dblclick();
  const yes = page.getByRole('button', { name: 'Yes', exact: true }).first();
  const badge = page.locator('[data-cy^=ModalityLoadBadge-]').first();
  const offered = await Promise.race([
    yes.waitFor({ state: 'visible', timeout: 60_000 }).then(() => 'prompt'),
    badge.waitFor({ state: 'visible', timeout: 60_000 }).then(() => 'badge'),
  ]).catch(() => null);
  if (offered === null) {
    fail(`after a double click on "${segDescription}" OHIF offered neither its LOAD badge nor its "open this Segmentation?" prompt; ${session.errorSummary()}`);
  }
  if (offered === 'prompt') {
    session.step('answering "Do you want to open this Segmentation?" with Yes');
    await yes.click();
  } else {
    session.step(`badge: ${(await badge.innerText()).replace(/\s+/g, ' ')}; clicking LOAD`);
    await badge.getByText(/^load$/i).first().click();
  }
  await badge.waitFor({ state: 'detached', timeout: 60_000 })
    .catch(async () => fail(`the SEG was not loaded: the viewport still shows "${(await badge.innerText()).replace(/\s+/g, ' ')}"; ${session.errorSummary()}`));
  const firstName = page.locator('[data-cy=data-row-title]', { hasText: segments[0].name }).first();
  await firstName.waitFor({ state: 'visible', timeout: 60_000 })
    .catch(async () => fail(`the segmentation panel shows no segment "${segments[0].name}"; panel: ${(await page.locator('[data-cy=data-row-title]').allInnerTexts()).join(', ') || 'no segments'}; ${session.errorSummary()}`));
  session.step('SEG loaded');

  // 3. Each segment's name and the colour of its swatch, as the panel shows them.
  const rows = await page.evaluate(() => [...document.querySelectorAll('[data-cy=data-row-title]')].map(title => {
    let row = title.parentElement;
    while (row && !row.querySelector('[data-cy=data-row-colorhex]')) {
      row = row.parentElement;
    }
    const swatch = row?.querySelector('[data-cy=data-row-colorhex]');
    const colour = swatch ? getComputedStyle(swatch).backgroundColor.match(/\d+/g).slice(0, 3).map(Number) : null;
    return { name: title.textContent.trim(), colour };
  }));
  session.step(`segments shown: ${JSON.stringify(rows)}`);

  // 4. The overlay is drawn over the images: on a slice with content, the grey CT gains coloured pixels.
  const box = await canvas.boundingBox();
  const centre = { x: box.x + box.width / 2, y: box.y + box.height / 2 };
  await session.goToSlice(showSlice, centre, slices);
  await page.mouse.move(box.x + 2, box.y + 2); // the pointer's brush cursor would count as overlay
  let stats = { coloured: 0 };
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    stats = await session.pixelStats(await canvas.screenshot());
    if (stats.coloured > 0.005 && stats.levels >= 16) {
      break;
    }
    await page.waitForTimeout(500); // poll interval of this wait-with-deadline
  }
  await page.screenshot({ path: join(artifacts, 'ohif-seg-loaded.png') });
  session.step(`slice ${showSlice}: ${(stats.coloured * 100).toFixed(2)}% coloured pixels, ${stats.levels} grey levels`);
  const errorsWhileLoading = [...session.errors, ...session.consoleErrors];

  // 5. The annotator corrects the first segment on another slice and saves.
  await session.withDeadline(session.allImagesFetched, 60_000, () => `all ${slices} images to be fetched by WADO-RS (got ${session.fetchedImages()})`);
  await page.locator('[data-cy=data-row-title]', { hasText: segments[0].name }).first().click();
  await session.pickBrush(3);
  await session.goToSlice(paintAt, centre, slices);
  await session.stroke(centre.x - 40, centre.y + 30);
  const painted = await session.currentSlice();
  if (painted.index !== paintAt) {
    fail(`painted on slice ${painted.index}, not ${paintAt}: the stroke scrolled the stack`);
  }
  await page.screenshot({ path: join(artifacts, `ohif-seg-painted-slice-${paintAt}.png`) });
  const moreButtons = page.locator('[data-cy^=segmentation-collapsed-more-btn]');
  const moreButton = (await moreButtons.count()) ? `[data-cy="${await moreButtons.first().getAttribute('data-cy')}"]` : undefined;
  const saved = await session.saveAsDicomSeg(reportName, artifacts, moreButton);

  console.log(JSON.stringify({
    listed: true,
    segments: rows,
    overlay: stats.coloured,
    errors: errorsWhileLoading,
    painted: { shown: painted.index, of: painted.count },
    ...saved,
    seconds: Math.round((Date.now() - session.started) / 100) / 10,
  }));
});
