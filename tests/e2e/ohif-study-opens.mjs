// Opens OHIF in headless Chromium, as a user would: the study list must show the uploaded study,
// the viewer must render its images. Driven by the C# integration test (OhifViewerTests), which
// passes everything through the environment; exits non-zero with a message saying what is wrong.
//
//   OHIF_URL            http://127.0.0.1:PORT/ (OHIF with /dicom-web/ proxied to Orthanc)
//   STUDY_UID           StudyInstanceUID of the uploaded series
//   PATIENT_ID          unique to this run; the patient name is Phantom^PATIENT_ID
//   STUDY_DESCRIPTION   shown in the study list's Description column
//   SLICES              number of images in the series
//   SCREENSHOT          where to save a screenshot of the viewer (PNG)
import { dirname } from 'node:path';
import { canvasSelector, env, fail, withOhif } from './ohif.mjs';

const ohifUrl = env('OHIF_URL').replace(/\/$/, '');
const studyUid = env('STUDY_UID');
const patientId = env('PATIENT_ID');
const description = env('STUDY_DESCRIPTION');
const slices = Number(env('SLICES'));
const screenshot = env('SCREENSHOT');
const timeout = 60_000;

await withOhif('ohif-study-opens', dirname(screenshot), screenshot, async session => {
  const page = session.page;

  // 1. The study list shows the uploaded study, found through Orthanc's QIDO-RS behind nginx.
  await page.goto(`${ohifUrl}/`, { waitUntil: 'domcontentloaded' });
  // The row is the innermost element holding both the patient and the study description.
  let rowText;
  try {
    const handle = await page.waitForFunction(
      ([patient, study]) => {
        const holds = e => e.innerText?.includes(patient) && e.innerText.includes(study);
        const candidates = [...document.querySelectorAll('tr, [role=row], div')].filter(holds);
        const innermost = candidates.filter(e => !candidates.some(other => other !== e && e.contains(other)));
        return innermost.length ? innermost[0].innerText : null;
      },
      [patientId, description],
      { timeout },
    );
    rowText = await handle.jsonValue();
  } catch {
    const listed = await page.locator('body').innerText();
    fail(`the study list at ${ohifUrl}/ shows no row with patient ${patientId} and description "${description}" after ${timeout / 1000} s; ${session.errorSummary()}; page text: ${listed.replace(/\s+/g, ' ').slice(0, 400)}`);
  }
  console.log(`study list row: ${rowText.replace(/\s+/g, ' ').trim()}`);

  // 2. The viewer opens the study and renders its images (WADO-RS through the same proxy).
  await page.goto(`${ohifUrl}/viewer?StudyInstanceUIDs=${encodeURIComponent(studyUid)}`, { waitUntil: 'domcontentloaded' });
  await page.locator('[data-cy=confirm-and-hide-button]').click({ timeout: 15_000 }).catch(() => {
    // No investigational-use banner in this build or already dismissed: nothing covers the viewport.
  });
  await session.waitForStack(slices, timeout);
  console.log(`viewport overlay: ${await session.overlayText()}`);

  // The overlay only proves the metadata arrived: the pixels must be on screen too. Wait until the
  // viewport's canvas shows an image with structure (many grey levels), not a flat black field.
  const canvas = page.locator(canvasSelector).first();
  await canvas.waitFor({ state: 'visible', timeout });
  let stats = { lit: 0, levels: 0 };
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    stats = await session.pixelStats(await canvas.screenshot());
    if (stats.lit > 0.05 && stats.levels >= 16) {
      break;
    }
    await page.waitForTimeout(500);
  }
  await page.screenshot({ path: screenshot });
  if (!(stats.lit > 0.05 && stats.levels >= 16)) {
    fail(`the viewport stays blank: ${(stats.lit * 100).toFixed(1)}% of its pixels lit, ${stats.levels} grey levels (screenshot ${screenshot})`);
  }
  console.log(`viewport pixels: ${(stats.lit * 100).toFixed(1)}% lit, ${stats.levels} grey levels; screenshot ${screenshot}`);
});
