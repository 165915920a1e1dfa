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
import { chromium } from 'playwright-core';

const env = name => {
  const value = process.env[name];
  if (!value) {
    fail(`environment variable ${name} is not set`);
  }
  return value;
};

class Failure extends Error {}

// Throws, so the browser is still closed on the way out.
function fail(message) {
  throw new Failure(message);
}

const ohifUrl = env('OHIF_URL').replace(/\/$/, '');
const studyUid = env('STUDY_UID');
const patientId = env('PATIENT_ID');
const description = env('STUDY_DESCRIPTION');
const slices = Number(env('SLICES'));
const screenshot = env('SCREENSHOT');
const timeout = 60_000;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
let page;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  const errors = [];
  page.on('pageerror', error => errors.push(String(error)));

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
    fail(`the study list at ${ohifUrl}/ shows no row with patient ${patientId} and description "${description}" after ${timeout / 1000} s; page errors: ${errors.join(' | ') || 'none'}; page text: ${listed.replace(/\s+/g, ' ').slice(0, 400)}`);
  }
  console.log(`study list row: ${rowText.replace(/\s+/g, ' ').trim()}`);

  // 2. The viewer opens the study and renders its images (WADO-RS through the same proxy).
  await page.goto(`${ohifUrl}/viewer?StudyInstanceUIDs=${encodeURIComponent(studyUid)}`, { waitUntil: 'domcontentloaded' });
  const banner = page.locator('[data-cy=confirm-and-hide-button]');
  try {
    await banner.click({ timeout: 15_000 });
  } catch {
    // No investigational-use banner in this build or already dismissed: nothing covers the viewport.
  }
  const overlay = page.locator('[data-cy=viewport-overlay-bottom-right]').first();
  try {
    await page.waitForFunction(
      ([selector, n]) => [...document.querySelectorAll(selector)].some(e => e.textContent.includes(`/${n})`)),
      ['[data-cy=viewport-overlay-bottom-right]', slices],
      { timeout },
    );
  } catch {
    const shown = (await overlay.count()) ? await overlay.innerText() : '(no viewport overlay)';
    fail(`the viewer did not show a stack of ${slices} images within ${timeout / 1000} s; overlay: ${shown}; page errors: ${errors.join(' | ') || 'none'}`);
  }
  console.log(`viewport overlay: ${(await overlay.innerText()).replace(/\s+/g, ' ').trim()}`);

  // The overlay only proves the metadata arrived: the pixels must be on screen too. Wait until the
  // viewport's canvas shows an image with structure (many grey levels), not a flat black field.
  const canvas = page.locator('.cornerstone-viewport-element canvas, [data-viewport-uid] canvas').first();
  await canvas.waitFor({ state: 'visible', timeout });
  let stats = { lit: 0, levels: 0 };
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    stats = await pixelStats(await canvas.screenshot());
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
} catch (error) {
  if (page) {
    await page.screenshot({ path: screenshot }).catch(() => {});
  }
  console.error(`ohif-study-opens: ${error instanceof Failure ? error.message : error?.stack ?? error}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}

// Decodes a PNG in a blank page of the same browser (no image library needed) and measures it.
async function pixelStats(png) {
  const probe = await browser.newPage();
  try {
    return await probe.evaluate(async base64 => {
      const image = new Image();
      image.src = `data:image/png;base64,${base64}`;
      await image.decode();
      const canvas = document.createElement('canvas');
      canvas.width = image.width;
      canvas.height = image.height;
      const context = canvas.getContext('2d');
      context.drawImage(image, 0, 0);
      const { data } = context.getImageData(0, 0, image.width, image.height);
      let lit = 0;
      const levels = new Set();
      for (let i = 0; i < data.length; i += 4) {
        const grey = Math.round((data[i] + data[i + 1] + data[i + 2]) / 3);
        if (grey > 20) {
          lit++;
        }
        levels.add(grey);
      }
      return { lit: lit / (data.length / 4), levels: levels.size };
    }, png.toString('base64'));
  } finally {
    await probe.close();
  }
}
