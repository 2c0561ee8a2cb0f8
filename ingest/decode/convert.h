// convert.h declares the picture converter the file and stream decoders share: any decoded
// AVFrame to packed BGR, keeping one swscale context while the picture stays the same.
#ifndef VIGIL_DECODE_CONVERT_H
#define VIGIL_DECODE_CONVERT_H

#include <libavutil/frame.h>
#include <libswscale/swscale.h>

typedef struct {
	struct SwsContext *sws;
	int w, h, fmt, cs, range;
	uint8_t *bgr[4];
	int linesize[4];
} vd_conv;

// vd_conv_scale converts fr into c->bgr; it returns 0 or a negative AVERROR.
int vd_conv_scale(vd_conv *c, const AVFrame *fr);
// vd_conv_free releases the converter's context and picture; the struct may be reused.
void vd_conv_free(vd_conv *c);

#endif
