// A TypeDoc plugin: the fields of a zod object schema show their `.describe()` text and their `.default()` value.
// typedoc-plugin-zod turns `z.input<typeof Schema>` into the object type it stands for, and TypeDoc carries a
// field's TSDoc comment over from the schema; what zod holds only at run time (a description, a default) it cannot
// see. This reads both from the source: a property of a `z.object({ … })` (or `.extend({ … })`) literal whose
// value is a call chain such as `z.number().int().default(8).describe("…")`.
import { Converter, Models, TypeScript as ts } from "typedoc";

const OBJECT_CALLS = new Set(["object", "strictObject", "looseObject", "extend", "safeExtend"]);

/** The `.describe()` / `.meta({ description })` text and `.default()` source text of a zod call chain. */
function zodField(expression) {
  let description;
  let defaultValue;
  let node = expression;
  while (ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression)) {
    const method = node.expression.name.text;
    const [arg] = node.arguments;
    if (method === "describe" && arg && ts.isStringLiteralLike(arg)) description ??= arg.text;
    if (method === "meta" && arg && ts.isObjectLiteralExpression(arg)) {
      for (const p of arg.properties) {
        const named = ts.isPropertyAssignment(p) && ts.isIdentifier(p.name) && p.name.text === "description";
        if (named && ts.isStringLiteralLike(p.initializer)) description ??= p.initializer.text;
      }
    }
    if (method === "default" && arg) defaultValue ??= arg.getText().replace(/\s+/g, " ");
    node = node.expression.expression;
  }
  return { description, defaultValue };
}

/** Whether a property assignment is a field of a zod object literal: `z.object({ field })`, `.extend({ field })`. */
function inZodObject(declaration) {
  const literal = declaration.parent;
  const call = literal?.parent;
  if (!literal || !ts.isObjectLiteralExpression(literal) || !call || !ts.isCallExpression(call)) return false;
  const callee = call.expression;
  return ts.isPropertyAccessExpression(callee) && OBJECT_CALLS.has(callee.name.text);
}

/** @param {import("typedoc").Application} app */
export function load(app) {
  app.converter.on(Converter.EVENT_CREATE_DECLARATION, (context, reflection) => {
    if (!reflection.kindOf(Models.ReflectionKind.Property)) return;
    const declaration = context.getSymbolFromReflection(reflection)?.declarations?.[0];
    if (!declaration || !ts.isPropertyAssignment(declaration) || !inZodObject(declaration)) return;
    const { description, defaultValue } = zodField(declaration.initializer);
    if (description === undefined && defaultValue === undefined) return;
    reflection.comment ??= new Models.Comment();
    const comment = reflection.comment;
    if (description !== undefined && comment.summary.length === 0) {
      // plain text, not Markdown: `<runDir>` is a placeholder, not an HTML tag
      comment.summary = [{ kind: "text", text: description.replace(/[\\`*_<>[\]]/g, "\\$&") }];
    }
    if (defaultValue !== undefined && !comment.getTag("@defaultValue")) {
      comment.blockTags.push(
        new Models.CommentTag("@defaultValue", [{ kind: "code", text: "`" + defaultValue + "`" }]),
      );
    }
  });
}
