// Chinese by default; English when the browser prefers it or the reader switches.
import { ref } from "vue";

const STORAGE_KEY = "dingpass.lang";

function initial() {
  const saved = globalThis.localStorage?.getItem(STORAGE_KEY);
  if (saved === "zh" || saved === "en") return saved;
  const preferred = (navigator.languages?.[0] ?? navigator.language ?? "zh").toLowerCase();
  return preferred.startsWith("en") ? "en" : "zh";
}

export const lang = ref(initial());

export function setLang(value) {
  lang.value = value;
  globalThis.localStorage?.setItem(STORAGE_KEY, value);
  document.documentElement.lang = value === "zh" ? "zh-CN" : "en";
}

const MESSAGES = {
  zh: {
    title: "申请软件许可",
    intro: "填写以下信息并提交。审批通过后，许可文件会发送到您的邮箱。",
    intro_code: "输入激活码并填写以下信息，许可文件会立即发送到您的邮箱，无需审批。",
    product: "产品",
    product_version: "产品版本",
    feature_code: "机器特征码",
    feature_code_from_qr: "来自二维码，无需修改。",
    example: (hint) => `例如 ${hint}`,
    company: "公司名称",
    contact: "联系人",
    email: "邮箱",
    phone: "电话（选填）",
    quantity: "数量",
    validity: "有效期",
    note: "备注（选填）",
    choose: "请选择",
    have_code: "我有激活码",
    have_code_hint: "数量和有效期由激活码决定。",
    code: "激活码",
    code_hint: "共 20 个字符；大小写、空格和横线均可。",
    submit: "提交申请",
    redeem: "使用激活码获取许可",
    redeemed: "激活码已兑换",
    redeemed_hint: "许可文件正在生成，稍后会发送到您的邮箱。",
    submitting: "正在提交…",
    retrying: (n, total) => `暂未收到确认，正在自动重试（第 ${n}/${total} 次）…`,
    not_confirmed: "我们无法确认您的申请是否已收到；可以放心重试。",
    try_again: "重新提交",
    fix_fields: (n) => `有 ${n} 处需要修改，请查看标出的字段。`,
    submitted: "申请已提交",
    number: "申请编号",
    status_link: "查看申请进度",
    keep_link: "请保存此链接，可随时查看进度。",
    status_title: "申请进度",
    auto_refresh: "此页面会自动刷新。",
    loading: "正在加载…",
    not_found: "找不到该申请，请检查链接。",
    unavailable: "服务暂时不可用，请稍后再试。",
    no_product: "缺少产品信息：请从产品中的二维码打开此页面。",
    unknown_product: (code) =>
      `此链接有误：其中的产品“${code}”不存在。请联系向您展示此二维码的软件供应商，索取正确的二维码。`,
    language: "English",
    days: (n) => `${n} 天`,
    years: (n) => `${n} 年`,
    perpetual: "永久",
    statuses: {
      submitted: "已提交",
      pending: "等待审批",
      approved: "已批准",
      issued: "许可已生成",
      delivered: "许可已发送",
      refused: "未获批准",
      terminated: "已撤销",
      failed: "处理失败",
    },
  },
  en: {
    title: "Apply for a license",
    intro: "Fill in the form and submit it. Once approved, the license file is emailed to you.",
    intro_code: "Enter your activation code and fill in the form: the license file is emailed to you at once.",
    product: "Product",
    product_version: "Product version",
    feature_code: "Machine feature code",
    feature_code_from_qr: "From the QR code; no need to change it.",
    example: (hint) => `e.g. ${hint}`,
    company: "Company",
    contact: "Contact name",
    email: "Email",
    phone: "Phone (optional)",
    quantity: "Quantity",
    validity: "Validity",
    note: "Note (optional)",
    choose: "Choose",
    have_code: "I have an activation code",
    have_code_hint: "The code sets the quantity and validity.",
    code: "Activation code",
    code_hint: "20 characters; case, spaces and dashes do not matter.",
    submit: "Submit application",
    redeem: "Get the license with this code",
    redeemed: "Code redeemed",
    redeemed_hint: "Your license is being issued and will be in your mailbox shortly.",
    submitting: "Submitting…",
    retrying: (n, total) => `No confirmation yet; trying again by itself (attempt ${n} of ${total})…`,
    not_confirmed: "We could not confirm your application was received; it is safe to try again.",
    try_again: "Try again",
    fix_fields: (n) => `${n} ${n === 1 ? "field needs" : "fields need"} attention; see the marked fields.`,
    submitted: "Application submitted",
    number: "Application number",
    status_link: "Follow your application",
    keep_link: "Keep this link to check the progress at any time.",
    status_title: "Application status",
    auto_refresh: "This page refreshes by itself.",
    loading: "Loading…",
    not_found: "No application has this link; please check it.",
    unavailable: "The service is unavailable; try again in a minute.",
    no_product: "No product given: open this page from the QR code in the product.",
    unknown_product: (code) =>
      `This link is wrong: it names a product that does not exist (“${code}”). Ask the vendor whose software showed you the QR code for a correct one.`,
    language: "中文",
    days: (n) => `${n} days`,
    years: (n) => (n === 1 ? "1 year" : `${n} years`),
    perpetual: "Perpetual",
    statuses: {
      submitted: "Submitted",
      pending: "Waiting for approval",
      approved: "Approved",
      issued: "License issued",
      delivered: "License sent",
      refused: "Refused",
      terminated: "Withdrawn",
      failed: "Failed",
    },
  },
};

/** The message `key` in the current language; functions are called with `args`. */
export function t(key, ...args) {
  const value = MESSAGES[lang.value][key];
  return typeof value === "function" ? value(...args) : value;
}

/** A {zh, en} message from the server, in the current language. */
export const pick = (message) => message?.[lang.value] ?? message?.en ?? "";

/** A message kept to be shown later: a key of ours or the server's {zh, en}, in the language now. */
export const say = (message) => (typeof message === "string" ? t(message) : pick(message));

export function validityLabel(code) {
  if (code === "perpetual") return t("perpetual");
  const count = Number.parseInt(code, 10);
  return code.endsWith("y") ? t("years", count) : t("days", count);
}
