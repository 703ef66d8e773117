// The application form's rules, as backend/applications/validation.py applies them, with the
// same messages. tests/contract runs both over the same cases so they cannot drift apart.

// One plain address: an ASCII dot-atom local part of at most 64 characters, and a domain of two
// or more letter-digit-hyphen labels whose last one starts with a letter.
const ATEXT = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+";
const LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const TOP_LABEL = "[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const EMAIL = new RegExp(`^(?=[^@]{1,64}@)${ATEXT}(?:\\.${ATEXT})*@(?:${LABEL}\\.)+${TOP_LABEL}$`);
const PHONE = /^\+?[0-9][0-9 \-]{5,19}$/;
// Unicode's White_Space property, trimmed from both ends (String.prototype.trim differs from
// Python's str.strip: it trims U+FEFF and keeps U+0085).
const WHITE_SPACE = "\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const TRIM = new RegExp(`^[${WHITE_SPACE}]+|[${WHITE_SPACE}]+$`, "g");
// With the u flag a surrogate pair is one code point, so \p{Cs} finds lone surrogates only.
// Single-line fields refuse controls, format characters (bidi overrides, zero-width), lone
// surrogates, private use, unassigned code points and line separators; the note keeps tabs,
// line breaks, private use and unassigned code points.
const SINGLE_LINE_BAD = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\u2028\u2029]/u;
const MULTI_LINE_BAD = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\p{Cf}\p{Cs}]/u;

// field: [required, shortest, longest]
export const TEXT_LIMITS = {
  company: [true, 2, 100],
  contact: [true, 1, 50],
  email: [true, 3, 254],
  phone: [false, 0, 20],
  note: [false, 0, 1000],
  feature_code: [true, 1, 128],
  product_version: [false, 0, 64],
};

const length = (text) => [...text].length; // code points, as Python counts

/** The text as the backend checks, stores and signs it: NFC, without white space at the ends. */
export const normalise = (text) => text.normalize("NFC").replace(TRIM, "");
const textOf = (raw) => (typeof raw === "string" ? normalise(raw) : "");

function checkText(name, raw) {
  const [required, shortest, longest] = TEXT_LIMITS[name];
  if (raw != null && typeof raw !== "string") return { zh: "应为文本。", en: "Must be text." };
  const value = normalise(raw ?? "");
  if (!value) return required ? { zh: "请填写此项。", en: "This field is required." } : null;
  if ((name === "note" ? MULTI_LINE_BAD : SINGLE_LINE_BAD).test(value)) {
    return { zh: "包含不允许的字符。", en: "Contains characters that are not allowed." };
  }
  if (length(value) < shortest) return { zh: `至少 ${shortest} 个字符。`, en: `At least ${shortest} characters.` };
  if (length(value) > longest) return { zh: `最多 ${longest} 个字符。`, en: `At most ${longest} characters.` };
  return null;
}

function allowsQuantity(product, quantity) {
  if (!Number.isInteger(quantity)) return false;
  if (product.quantities?.length) return product.quantities.includes(quantity);
  return quantity >= 1 && quantity <= product.max_quantity;
}

/** What to say about a quantity the product does not offer: the values or range it does. */
function quantityMessage(product) {
  const listed = product.quantities ?? [];
  if (listed.length) {
    return { zh: `请从 ${listed.join("、")} 中选择数量。`, en: `Choose one of ${listed.join(", ")}.` };
  }
  const top = product.max_quantity;
  return { zh: `请选择 1 到 ${top} 之间的数量。`, en: `Choose a quantity from 1 to ${top}.` };
}

const fits = (product, code) => new RegExp(`^(?:${product.feature_code_pattern})$`).test(code);

/**
 * The feature code as the license binds it: as given where the product's pattern takes it,
 * else with its ASCII letters upper-cased (a person typed it in lower case). ASCII only, as the
 * backend does: the two sides' Unicode case tables differ.
 */
export function canonicalFeatureCode(product, code) {
  if (!product || fits(product, code)) return code;
  return code.replace(/[a-z]+/g, (letters) => letters.toUpperCase());
}

function checkProductTerms(product, form, errors) {
  const code = canonicalFeatureCode(product, textOf(form.feature_code));
  if (code && !errors.feature_code && !fits(product, code)) {
    const hint = product.feature_code_hint;
    errors.feature_code = { zh: `格式应类似 ${hint}。`, en: `Should look like ${hint}.` };
  }
  if (!allowsQuantity(product, form.quantity)) errors.quantity = quantityMessage(product);
  if (!product.validities.includes(form.validity)) {
    errors.validity = { zh: "请选择允许的有效期。", en: "Choose an allowed validity." };
  }
}

/** Errors by field ({zh, en} each) for a form about `product` (its public catalogue entry). */
export function validate(form, product) {
  const errors = {};
  for (const name of Object.keys(TEXT_LIMITS)) {
    const error = checkText(name, form[name]);
    if (error) errors[name] = error;
  }
  if (!product) errors.product = { zh: "未知产品。", en: "Unknown product." };
  else checkProductTerms(product, form, errors);
  const email = textOf(form.email);
  if (email && !errors.email && !EMAIL.test(email)) {
    errors.email = { zh: "请输入有效的邮箱地址。", en: "Enter a valid email address." };
  }
  const phone = textOf(form.phone);
  if (phone && !errors.phone && !PHONE.test(phone)) {
    errors.phone = { zh: "请输入有效的电话号码。", en: "Enter a valid phone number." };
  }
  if (form.language !== undefined && !["zh", "en"].includes(form.language)) {
    errors.language = { zh: "语言应为 zh 或 en。", en: "Language must be zh or en." };
  }
  return errors;
}

// Activation codes, read as license/codes.py reads them: 19 random Crockford base32 symbols and
// a check symbol (Damm's scheme over GF(32)), forgiving case, white space, dashes, I/L for 1 and
// O for 0. A typo is caught here, before any request. tests/contract runs both over the same codes.
const CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"; // Crockford: no I, L, O, U
const CODE_LENGTH = 20;
const CODE_GROUP = 5;
const CODE_VALUES = new Map([...CODE_ALPHABET].map((symbol, value) => [symbol, value]));
[["I", 1], ["L", 1], ["O", 0]].forEach(([symbol, value]) => CODE_VALUES.set(symbol, value));
const GF32_MODULUS = 0b100101; // x^5 + x^2 + 1
// What parse drops: what Python's str.split() splits on (str.isspace), and dashes.
const CODE_SPACE = /[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000-]/g;

const timesTwo = (value) => (value & 0b10000 ? (value << 1) ^ GF32_MODULUS : value << 1);
const damm = (values) => values.reduce((state, value) => timesTwo(state) ^ value, 0);
const byCodePoint = (a, b) => a.codePointAt(0) - b.codePointAt(0); // as Python's sorted()

/** A typed code without white space or dashes, upper-cased. */
export const compactCode = (text) => text.replace(CODE_SPACE, "").toUpperCase();

/** A typed code as the page shows it while typing: upper case, in dashed groups of five. */
export function formatCode(text) {
  const symbols = [...compactCode(text)];
  const groups = [];
  for (let i = 0; i < symbols.length; i += CODE_GROUP) groups.push(symbols.slice(i, i + CODE_GROUP).join(""));
  return groups.join("-");
}

/**
 * A typed code read as license/codes.py parse reads it: {code} in its canonical form, or
 * {error} — "characters" (with the ones `found`), "length" (with the `count`) or "typo".
 */
export function parseCode(text) {
  const symbols = [...compactCode(text)];
  const unknown = [...new Set(symbols.filter((symbol) => !CODE_VALUES.has(symbol)))];
  if (unknown.length) return { error: "characters", found: unknown.sort(byCodePoint).join("") };
  if (symbols.length !== CODE_LENGTH) return { error: "length", count: symbols.length };
  const values = symbols.map((symbol) => CODE_VALUES.get(symbol));
  if (damm(values) !== 0) return { error: "typo" };
  return { code: formatCode(values.map((value) => CODE_ALPHABET[value]).join("")) };
}

/**
 * What is wrong with a typed activation code ({zh, en}), or null when it reads as a code. The
 * words are the backend's (backend/codes/refusals.py CodeMalformed), so both say the same.
 */
export function codeError(text) {
  if (typeof text !== "string" || !compactCode(text)) {
    return { zh: "请填写激活码。", en: "Enter your activation code." };
  }
  const read = parseCode(text);
  if (read.error === "characters") {
    return {
      zh: "激活码只包含数字和字母（没有 U），请核对。",
      en: "An activation code has only digits and letters (no U); check it.",
    };
  }
  if (read.error === "length") {
    return {
      zh: `激活码有 ${CODE_LENGTH} 个字符，这里有 ${read.count} 个，请检查是否漏输。`,
      en: `An activation code has ${CODE_LENGTH} characters, this one ${read.count}: check that none is missing.`,
    };
  }
  if (read.error === "typo") {
    return { zh: "激活码有输入错误，请逐个字符核对。", en: "This activation code has a typing mistake: check each character." };
  }
  return null;
}

/** Errors by field for a redemption: the form but its terms (the code's batch sets them), and the code. */
export function validateRedemption(form, product) {
  const { quantity, validity, ...errors } = validate(form, product);
  const code = codeError(form.code);
  return code ? { code, ...errors } : errors;
}
