// Runs the page's validation over cases on stdin ({catalogue, cases}); prints each verdict.
// tests/contract compares these with the backend's verdicts on the same cases.
import { readFileSync } from "node:fs";
import { validate } from "../src/validation.js";

const { catalogue, cases } = JSON.parse(readFileSync(0, "utf8"));
const verdicts = cases.map((form) => validate(form, catalogue.products[form.product]));
process.stdout.write(JSON.stringify(verdicts));
