// Command-line options of the scripts: `--name value` pairs and `--flag` switches.

/** The value after `--name` in `argv`, or `fallback`. */
export function arg(name, fallback, argv = process.argv.slice(2)) {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback;
}

/** Whether the switch `--name` is present. */
export function flag(name, argv = process.argv.slice(2)) {
  return argv.includes(name);
}
