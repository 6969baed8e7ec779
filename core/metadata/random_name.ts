/**
 * Docker-style generated container names: `adjective_scientist`.
 *
 * @module
 */

const LEFT = [
  "admiring",
  "bold",
  "brave",
  "clever",
  "dazzling",
  "eager",
  "elastic",
  "festive",
  "focused",
  "gallant",
  "gifted",
  "happy",
  "hopeful",
  "jolly",
  "keen",
  "kind",
  "laughing",
  "lucid",
  "magical",
  "modest",
  "nifty",
  "nostalgic",
  "optimistic",
  "peaceful",
  "quirky",
  "relaxed",
  "serene",
  "sharp",
  "stoic",
  "sweet",
  "tender",
  "upbeat",
  "vibrant",
  "wizardly",
  "youthful",
  "zealous",
];
const RIGHT = [
  "babbage",
  "bohr",
  "curie",
  "darwin",
  "dijkstra",
  "einstein",
  "euler",
  "faraday",
  "fermi",
  "galileo",
  "gauss",
  "hopper",
  "hypatia",
  "kepler",
  "knuth",
  "lamport",
  "liskov",
  "lovelace",
  "maxwell",
  "meitner",
  "newton",
  "noether",
  "pascal",
  "ritchie",
  "shannon",
  "thompson",
  "turing",
  "wozniak",
  "yalow",
];

/** A random `adjective_name`; `retry > 0` appends a digit, as docker does after a clash. */
export function randomName(retry = 0): string {
  const pick = (list: string[]) =>
    list[crypto.getRandomValues(new Uint32Array(1))[0] % list.length];
  const name = `${pick(LEFT)}_${pick(RIGHT)}`;
  return retry > 0 ? `${name}${crypto.getRandomValues(new Uint8Array(1))[0] % 10}` : name;
}
