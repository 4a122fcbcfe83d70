// Stand-in (compile checks only, see README.md): androidx.annotation.
package androidx.annotation

@Target(AnnotationTarget.FUNCTION, AnnotationTarget.CONSTRUCTOR, AnnotationTarget.CLASS)
annotation class MainThread

@Target(AnnotationTarget.FUNCTION, AnnotationTarget.CONSTRUCTOR, AnnotationTarget.CLASS, AnnotationTarget.FIELD)
annotation class RequiresPermission(val value: String = "")
