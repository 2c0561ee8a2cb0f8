//go:build cgo

#include <libavutil/imgutils.h>

#include "convert.h"

void vd_conv_free(vd_conv *c) {
	sws_freeContext(c->sws);
	c->sws = NULL;
	av_freep(&c->bgr[0]);
}

// The context is recreated only when the picture's size or colour description changes.
int vd_conv_scale(vd_conv *c, const AVFrame *fr) {
	if (!c->sws || fr->width != c->w || fr->height != c->h || fr->format != c->fmt ||
	    fr->colorspace != c->cs || fr->color_range != c->range) {
		vd_conv_free(c);
		c->sws = sws_getContext(fr->width, fr->height, fr->format, fr->width, fr->height,
		                        AV_PIX_FMT_BGR24, SWS_BILINEAR, NULL, NULL, NULL);
		if (!c->sws)
			return AVERROR(EINVAL);
		// Follow the stream's own matrix and range, as the ffmpeg command line does, so that colours
		// match what people see in players.
		int *inv, *table, src_range, dst_range, brightness, contrast, saturation;
		sws_getColorspaceDetails(c->sws, &inv, &src_range, &table, &dst_range, &brightness, &contrast,
		                         &saturation);
		const int *src = inv;
		if (fr->colorspace != AVCOL_SPC_UNSPECIFIED)
			src = sws_getCoefficients(fr->colorspace);
		if (fr->color_range != AVCOL_RANGE_UNSPECIFIED)
			src_range = fr->color_range == AVCOL_RANGE_JPEG;
		sws_setColorspaceDetails(c->sws, src, src_range, table, dst_range, brightness, contrast, saturation);
		int ret = av_image_alloc(c->bgr, c->linesize, fr->width, fr->height, AV_PIX_FMT_BGR24, 32);
		if (ret < 0)
			return ret;
		c->w = fr->width;
		c->h = fr->height;
		c->fmt = fr->format;
		c->cs = fr->colorspace;
		c->range = fr->color_range;
	}
	int h = sws_scale(c->sws, (const uint8_t *const *)fr->data, fr->linesize, 0, fr->height, c->bgr,
	                  c->linesize);
	return h == fr->height ? 0 : AVERROR(EINVAL);
}
