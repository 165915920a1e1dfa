// What the OHIF browser scripts share: the browser, the error log, and the user's gestures in OHIF 3.13's
// segmentation mode (open a study, scroll to a slice, paint a brush stroke, Export → DICOM SEG → Save).
// Selectors and behaviour as observed: see /work/shared/reference/ohif.md and the comments below.
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';

export class Failure extends Error {}

// Throws, so the browser is still closed on the way out.
export function fail(message) {
  throw new Failure(message);
}

export const env = name => {
  const value = process.env[name];
  if (!value) {
    fail(`environment variable ${name} is not set`);
  }
  return value;
};

export const overlaySelector = '[data-cy=viewport-overlay-bottom-right]';
export const canvasSelector = '.cornerstone-viewport-element canvas, [data-viewport-uid] canvas';

/**
 * Runs `body(session)` with a fresh headless Chromium page; prints `name: message` and sets a non-zero exit code when
 * it throws, after saving `failureScreenshot`. The session counts page errors and console errors as they come.
 */
export async function withOhif(name, artifacts, failureScreenshot, body) {
  const started = Date.now();
  mkdirSync(artifacts, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  let page;
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.setDefaultTimeout(60_000);
    const session = new OhifSession(browser, page, started);
    page.on('pageerror', error => session.errors.push(`page error: ${error}`));
    page.on('console', message => {
      if (message.type() === 'error') {
        session.consoleErrors.push(message.text());
      }
    });
    await body(session);
  } catch (error) {
    if (page) {
      await page.screenshot({ path: failureScreenshot }).catch(() => {});
    }
    console.error(`${name}: ${error instanceof Failure ? error.message : error?.stack ?? error}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

export class OhifSession {
  constructor(browser, page, started) {
    this.browser = browser;
    this.page = page;
    this.started = started;
    this.errors = [];
    this.consoleErrors = [];
  }

  step(message) {
    console.error(`[${((Date.now() - this.started) / 1000).toFixed(1)} s] ${message}`);
  }

  errorSummary() {
    return [...this.errors, ...this.consoleErrors.map(e => `console error: ${e}`)].join(' | ') || 'none';
  }

  /**
   * Counts the frames fetched by WADO-RS (one URL per instance): OHIF builds a SEG from the images in its cache, so a
   * save must wait until every image of the stack has arrived. Register before opening the study.
   */
  countFetchedImages(slices) {
    const loaded = new Set();
    let resolve;
    this.allImagesFetched = new Promise(r => {
      resolve = r;
    });
    this.fetchedImages = () => loaded.size;
    this.page.on('response', response => {
      const match = /\/instances\/([^/]+)\/frames\//.exec(response.url());
      if (match && response.ok()) {
        loaded.add(match[1]);
        if (loaded.size >= slices) {
          resolve();
        }
      }
    });
  }

  /** Opens the study in the segmentation mode and waits until the viewport shows its stack of `slices` images. */
  async openSegmentationMode(ohifUrl, studyUid, slices) {
    const page = this.page;
    await page.goto(`${ohifUrl}/segmentation?StudyInstanceUIDs=${encodeURIComponent(studyUid)}`, { waitUntil: 'domcontentloaded' });
    // The "investigational use" banner covers the viewport bottom in every fresh context.
    await page.locator('[data-cy=confirm-and-hide-button]').click({ timeout: 30_000 }).catch(() => {
      // No banner in this build: nothing covers the viewport.
    });
    await this.waitForStack(slices);
    const canvas = page.locator(canvasSelector).first();
    await canvas.waitFor({ state: 'visible' });
    return canvas;
  }

  async waitForStack(slices, timeout = 60_000) {
    await this.page.waitForFunction(
      ([selector, n]) => [...document.querySelectorAll(selector)].some(e => e.textContent.includes(`/${n})`)),
      [overlaySelector, slices],
      { timeout },
    ).catch(async () => fail(`the viewer did not show a stack of ${slices} images within ${timeout / 1000} s; overlay: ${await this.overlayText()}; ${this.errorSummary()}`));
    this.step(`stack shown: ${await this.overlayText()}`);
  }

  async overlayText() {
    const overlay = this.page.locator(overlaySelector).first();
    return (await overlay.count()) ? (await overlay.innerText()).replace(/\s+/g, ' ').trim() : '(no viewport overlay)';
  }

  async currentSlice() {
    const text = await this.overlayText();
    const match = /\((\d+)\s*\/\s*(\d+)\)/.exec(text);
    if (!match) {
      fail(`the viewport overlay shows no "(k/N)" slice number: ${text}`);
    }
    return { index: Number(match[1]), count: Number(match[2]) };
  }

  // One wheel notch moves one slice; wait until the overlay shows each step before the next.
  async goToSlice(target, at, slices) {
    const page = this.page;
    await page.mouse.move(at.x, at.y);
    for (let guard = 0; guard < 2 * slices; guard++) {
      const { index } = await this.currentSlice();
      if (index === target) {
        return;
      }
      await page.mouse.wheel(0, target > index ? 100 : -100);
      await page.waitForFunction(
        ([selector, before]) => !document.querySelector(selector)?.textContent.includes(`(${before}/`),
        [overlaySelector, index],
        { timeout: 15_000 },
      ).catch(async () => fail(`the mouse wheel did not change the slice from ${index} (overlay: ${await this.overlayText()})`));
    }
    fail(`could not scroll to slice ${target}; overlay: ${await this.overlayText()}`);
  }

  /** Picks the brush with a radius in mm (the 25 mm default is huge on small images). */
  async pickBrush(radiusMm) {
    await this.page.locator('[data-cy=Brush-btn]').first().click();
    const radius = this.page.locator('[data-cy=brush-radius] input[type=number]').first();
    await radius.fill(String(radiusMm));
    await radius.press('Enter');
    this.step(`brush radius ${await radius.inputValue()} mm`);
  }

  /** A short horizontal stroke from (x0, y0): a dozen mouse events; each renders in 0.3–0.5 s without a GPU. */
  async stroke(x0, y0) {
    const page = this.page;
    await page.mouse.move(x0, y0);
    await page.mouse.down();
    for (let i = 1; i <= 4; i++) {
      await page.mouse.move(x0 + i * 10, y0, { steps: 1 });
    }
    await page.mouse.up();
  }

  /**
   * Export → DICOM SEG → "Store Segmentation" → report name → Save, as a user does; returns the STOW-RS response and the
   * stored SEG's SOPInstanceUID from Orthanc's answer. `moreButton` is the "…" of the segmentation in the panel.
   */
  async saveAsDicomSeg(reportName, artifacts, moreButton = '[data-cy=segmentation-collapsed-more-btn-Labelmap]') {
    const page = this.page;
    const timeout = 60_000;
    // "DICOM SEG" stays disabled until OHIF has registered the painted voxels, the menu may close under the pointer,
    // and a click on a submenu that is closing lands nowhere (seen once in a loaded full run: the click returned, no
    // dialog came). So: open the menu, take the item once it is enabled, and count it done only when the save dialog
    // shows; else close everything and start over, until the deadline.
    const nameBox = page.getByRole('textbox', { name: 'Report name' }).or(page.getByPlaceholder('Report name')).first();
    const exportDeadline = Date.now() + timeout;
    let lastProblem = 'the item stayed disabled';
    for (;;) {
      await page.locator(moreButton).first().click();
      await page.getByText('Export', { exact: true }).first().click();
      const item = page.getByText('DICOM SEG', { exact: true }).first();
      await item.waitFor({ state: 'visible', timeout: 10000 });
      if ((await item.getAttribute('aria-disabled')) !== 'true') {
        try {
          await item.click({ timeout: 10000 });
          await nameBox.waitFor({ state: 'visible', timeout: 10000 });
          break;
        } catch (error) {
          lastProblem = error.message.split('\n')[0];
          this.step(`no save dialog from Export → DICOM SEG (${lastProblem}); reopening the menu`);
        }
      }
      if (Date.now() > exportDeadline) {
        fail(`Export → DICOM SEG gave no save dialog within ${timeout / 1000} s after painting (last: ${lastProblem})`);
      }
      await page.keyboard.press('Escape');
      await page.keyboard.press('Escape');
      await page.waitForTimeout(250); // poll interval of this wait-with-deadline
    }
    // For a segmentation loaded from a stored SEG the dialog offers that SEG's series, its name box disabled: the
    // correction goes into a series of its own, under the name typed here ("Create new series").
    if (await nameBox.isDisabled()) {
      await nameBox.locator('xpath=ancestor::div[.//button[@role="combobox"]][1]').getByRole('combobox').first().click();
      await page.getByRole('option', { name: 'Create new series', exact: true }).click();
      this.step('save dialog: "Create new series" chosen instead of the loaded SEG\'s series');
    }
    await nameBox.fill(reportName);
    await page.screenshot({ path: `${artifacts}/ohif-save-dialog.png` });
    // Registered before the click: a fast STOW could otherwise answer before anyone listens.
    const stow = page.waitForResponse(
      r => r.request().method() === 'POST' && /\/dicom-web\/studies\/?(\?|$)/.test(new URL(r.url()).pathname + '?'),
      { timeout },
    );
    await page.getByRole('button', { name: 'Save', exact: true }).first().click();
    this.step('save clicked, waiting for STOW-RS');
    const response = await stow.catch(() => fail(`OHIF sent no STOW-RS request to /dicom-web/studies within ${timeout / 1000} s; ${this.errorSummary()}`));
    const body = await response.text();
    let segSopInstanceUid = null;
    try {
      const json = JSON.parse(body);
      // DICOM JSON: ReferencedSOPSequence (0008,1199) → ReferencedSOPInstanceUID (0008,1155).
      segSopInstanceUid = json?.['00081199']?.Value?.[0]?.['00081155']?.Value?.[0] ?? null;
    } catch {
      // Orthanc answers STOW in DICOM JSON; anything else is reported through the status.
    }
    if (response.status() !== 200) {
      await page.screenshot({ path: `${artifacts}/ohif-saved.png` });
      fail(`STOW-RS answered ${response.status()}: ${body.slice(0, 400)}`);
    }
    // What the user sees: the study browser lists the new SEG series under the report name.
    const listed = await page.locator('[data-cy=series-description-label]', { hasText: reportName }).first()
      .waitFor({ state: 'attached', timeout: 30_000 })
      .then(() => true, () => false);
    await page.screenshot({ path: `${artifacts}/ohif-saved.png` });
    return { stowStatus: response.status(), segSopInstanceUid, listedInStudyBrowser: listed };
  }

  withDeadline(promise, limit, what) {
    let timer;
    const expired = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Failure(`timed out after ${limit / 1000} s waiting for ${what()}`)), limit);
    });
    return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
  }

  // Decodes a PNG in a blank page of the same browser (no image library needed) and measures it: the share of lit
  // pixels, the number of grey levels, and the share of clearly coloured pixels (a segmentation overlay on a grey image).
  async pixelStats(png) {
    const probe = await this.browser.newPage();
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
        let coloured = 0;
        const levels = new Set();
        for (let i = 0; i < data.length; i += 4) {
          const [r, g, b] = [data[i], data[i + 1], data[i + 2]];
          const grey = Math.round((r + g + b) / 3);
          if (grey > 20) {
            lit++;
          }
          if (Math.max(r, g, b) - Math.min(r, g, b) > 40) {
            coloured++;
          }
          levels.add(grey);
        }
        const n = data.length / 4;
        return { lit: lit / n, levels: levels.size, coloured: coloured / n };
      }, png.toString('base64'));
    } finally {
      await probe.close();
    }
  }
}
