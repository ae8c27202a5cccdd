"""render stage: MJML templates compiled once per version, personalised per recipient.

`library.TemplateLibrary` loads and caches templates (`compiler.compile_template` after the
checks of `jinja_check` and `mjml_check`), `compiled.CompiledTemplate.render` makes a
`messages.RenderedEmail` (`render_skeleton`: the same email as a skeleton shared with other
recipients plus substitutions, see `skeletons`), `tokens` signs click and unsubscribe URLs,
and `template_checks.validate_templates` reports problems. See docs/templates.md.
"""
