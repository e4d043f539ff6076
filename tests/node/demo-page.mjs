// Opens Spillway's demo page in headless Chromium, watches mountpoint 1 and
// checks that getStats() shows framesDecoded rising for 5 s. Run by
// tests/e2e (TestChromiumDemoPage):
//
//   node demo-page.mjs <page-url> <screenshot.png>
//
// Prints one JSON line per step; exits non-zero on failure.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [pageURL, shot] = process.argv.slice(2);
const step = (name, data) => console.log(JSON.stringify({ step: name, data }));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const userDir = mkdtempSync(join(tmpdir(), 'spillway-chromium-'));
const browser = await chromium.launchPersistentContext(userDir, {
  executablePath: process.env.CHROMIUM_BIN || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required'],
});
let code = 0;
try {
  const page = browser.pages()[0] || await browser.newPage();
  const logs = [];
  page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  await page.goto(pageURL);
  await page.waitForSelector('#watch-1', { timeout: 15000 });
  step('listed', {});
  await page.click('#watch-1');
  await page.waitForFunction(() => window.spillwayState === 'playing' && window.spillwayStats
    && window.spillwayStats.framesDecoded > 0, null, { timeout: 20000 });
  const first = await page.evaluate(() => ({ ...window.spillwayStats }));
  step('playing', first);
  const samples = [first.framesDecoded];
  for (let i = 0; i < 5; i++) {
    await sleep(1000);
    samples.push(await page.evaluate(() => window.spillwayStats.framesDecoded));
  }
  const last = await page.evaluate(() => ({ ...window.spillwayStats }));
  step('stats', { samples, last });
  for (let i = 1; i < samples.length; i++) {
    if (!(samples[i] > samples[i - 1])) throw new Error(`framesDecoded stalled: ${samples.join(' ')}`);
  }
  await page.screenshot({ path: shot, fullPage: true });
  step('screenshot', { path: shot });
  if (logs.length) step('console', logs.slice(-20));
} catch (e) {
  code = 1;
  console.error(e.stack || String(e));
  try {
    const page = browser.pages()[0];
    console.error('state:', await page.evaluate(() => String(window.spillwayState)));
    await page.screenshot({ path: shot, fullPage: true });
  } catch {}
} finally {
  await browser.close();
  rmSync(userDir, { recursive: true, force: true });
}
process.exit(code);
