"""The one error a structural fix raises, apart from libcst's transformer so that the
package's entry point and the transformer both import it without importing each other."""


class CodemodError(Exception):
    """A structural fix that cannot be applied to a file, said in one line."""
