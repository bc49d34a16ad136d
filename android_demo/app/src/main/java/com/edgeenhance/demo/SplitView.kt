package com.edgeenhance.demo

import android.content.Context
import android.graphics.Bitmap
import android.graphics.Canvas
import android.graphics.Paint
import android.graphics.Rect
import android.util.AttributeSet
import android.view.MotionEvent
import android.view.View

/** Draws the enhanced frame right of a draggable split line; the camera preview shows through on the left. */
class SplitView(context: Context, attrs: AttributeSet? = null) : View(context, attrs) {
    private var frame: Bitmap? = null
    private var split = 0.5f
    private val line = Paint().apply { color = 0xffffffff.toInt(); strokeWidth = 4f }

    fun show(bitmap: Bitmap) { frame = bitmap; postInvalidate() }

    override fun onTouchEvent(event: MotionEvent): Boolean {
        split = (event.x / width).coerceIn(0f, 1f); invalidate(); return true
    }

    override fun onDraw(canvas: Canvas) {
        val bmp = frame ?: return
        val xSplit = (width * split).toInt()
        val src = Rect((bmp.width * split).toInt(), 0, bmp.width, bmp.height)
        canvas.drawBitmap(bmp, src, Rect(xSplit, 0, width, height), null)
        canvas.drawLine(xSplit.toFloat(), 0f, xSplit.toFloat(), height.toFloat(), line)
    }
}
