// The application form's rules, as backend/applications/validation.py applies them, with the
// same messages. tests/contract runs both over the same cases so they cannot drift apart.

const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
const PHONE = /^\+?[0-9][0-9 \-]{5,19}$/;
const SINGLE_LINE_BAD = /[\x00-\x1f\x7f]/;
const MULTI_LINE_BAD = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;

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

function checkText(name, raw) {
  const [required, shortest, longest] = TEXT_LIMITS[name];
  if (raw != null && typeof raw !== "string") return { zh: "应为文本。", en: "Must be text." };
  const value = (raw ?? "").trim();
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

function checkProductTerms(product, form, errors) {
  const code = (form.feature_code ?? "").trim();
  const pattern = new RegExp(`^(?:${product.feature_code_pattern})$`);
  if (code && !errors.feature_code && !pattern.test(code)) {
    const hint = product.feature_code_hint;
    errors.feature_code = { zh: `格式应类似 ${hint}。`, en: `Should look like ${hint}.` };
  }
  if (!allowsQuantity(product, form.quantity)) {
    errors.quantity = { zh: "请选择允许的数量。", en: "Choose an allowed quantity." };
  }
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
  const email = (form.email ?? "").trim();
  if (email && !errors.email && !EMAIL.test(email)) {
    errors.email = { zh: "请输入有效的邮箱地址。", en: "Enter a valid email address." };
  }
  const phone = (form.phone ?? "").trim();
  if (phone && !errors.phone && !PHONE.test(phone)) {
    errors.phone = { zh: "请输入有效的电话号码。", en: "Enter a valid phone number." };
  }
  if (form.language !== undefined && !["zh", "en"].includes(form.language)) {
    errors.language = { zh: "语言应为 zh 或 en。", en: "Language must be zh or en." };
  }
  return errors;
}
