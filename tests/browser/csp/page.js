// Uses the package as an app would — worker mode and in the page, both tasks, watch() on a video
// made from a canvas — and writes what happened to #out as JSON (data-done when finished).
import { ImageClassifier, ObjectDetector } from "/www/lib/sightline.js";

const out = document.getElementById("out");

function loadImage(src) {
  const img = new Image();
  img.src = src;
  return img.decode().then(() => img);
}

async function run() {
  const result = {};
  const coffee = await loadImage("/tests/fixtures/images/coffee.png");
  const dog = await loadImage("/tests/fixtures/images/dog.jpg");
  for (const worker of [true, false]) {
    const c = await ImageClassifier.create({ backend: "cpu", worker });
    const d = await ObjectDetector.create({ backend: "cpu", worker });
    const top = (await c.classify(coffee)).classes[0].label;
    const labels = (await d.detect(dog)).detections.map((x) => x.label);
    // Live video from a canvas stream (media-src blob:/mediastream: and the worker hop).
    const canvas = document.createElement("canvas");
    canvas.width = coffee.naturalWidth;
    canvas.height = coffee.naturalHeight;
    const ctx = canvas.getContext("2d");
    const timer = setInterval(() => ctx.drawImage(coffee, 0, 0), 50);
    const video = document.createElement("video");
    video.muted = true;
    video.srcObject = canvas.captureStream(20);
    await video.play();
    const live = await new Promise((resolve, reject) => {
      const w = c.watch(video, (r) => {
        w.stop();
        resolve(r.classes[0].label);
      }, { onError: reject });
    });
    clearInterval(timer);
    video.srcObject.getTracks().forEach((t) => t.stop());
    await c.close();
    await d.close();
    result[worker ? "worker" : "page"] = { top, labels, live };
  }
  return result;
}

run().then(
  (result) => {
    out.textContent = JSON.stringify(result);
    out.dataset.done = "ok";
  },
  (e) => {
    out.textContent = `${e.name}: ${e.message}`;
    out.dataset.done = "error";
  },
);
