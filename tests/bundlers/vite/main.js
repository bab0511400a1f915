// Classifies coffee.png with the installed package; `?worker=0` runs the model in the page.
import { ImageClassifier } from "sightline";

async function run() {
  const img = new Image();
  img.src = new URL("./coffee.png", import.meta.url).href;
  await img.decode();
  const options = { backend: "cpu" };
  if (new URLSearchParams(location.search).get("worker") === "0") options.worker = false;
  const classifier = await ImageClassifier.create(options);
  return classifier.classify(img);
}

run().then(
  (result) => (window.result = result),
  (e) => {
    console.error(e);
    window.result = { error: String(e?.stack ?? e) };
  },
);
