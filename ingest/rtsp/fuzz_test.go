package rtsp

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/sdp"
	"github.com/pion/rtp"

	"github.com/vigilcam/vigil/ingest/decode"
)

// FuzzSDPAndRTP drives everything between the network and the decoder with hostile input: a
// session description, then RTP packets (each prefixed by its 2-byte length) through the chosen
// track's depacketizer into the decoder. Anything may be refused; nothing may crash.
func FuzzSDPAndRTP(f *testing.F) {
	const h264SDP = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=cam\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n" +
		"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n" +
		"a=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z0LAHtkDxWhAAAADAEAAAAwDxYuS,aMuMsg==\r\na=control:trackID=0\r\n"
	const h265SDP = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=cam\r\nt=0 0\r\n" +
		"m=video 0 RTP/AVP 97\r\na=rtpmap:97 H265/90000\r\na=control:trackID=0\r\n"
	packet := func(marker bool, seq uint16, payload ...byte) []byte {
		b, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, Marker: marker, SequenceNumber: seq, Timestamp: uint32(seq) * 3600}, Payload: payload}).Marshal()
		return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)
	}
	idr := packet(true, 1, 0x65, 0x88, 0x84, 0x00, 0x33, 0xff)
	fuA := append(packet(false, 2, 0x7c, 0x85, 0x88, 0x84), packet(true, 3, 0x7c, 0x45, 0x00, 0x33)...)
	f.Add([]byte(h264SDP), append(idr, fuA...))
	f.Add([]byte(h265SDP), packet(true, 1, 0x26, 0x01, 0xaf, 0x06, 0xb8))
	f.Add([]byte("v=0\r\nm=video 0 RTP/AVP 26\r\n"), []byte{0, 1, 0x80})
	f.Fuzz(func(t *testing.T, sdpData, rtpData []byte) {
		var sd sdp.SessionDescription
		if sd.Unmarshal(sdpData) != nil {
			return
		}
		var desc description.Session
		if desc.Unmarshal(&sd) != nil {
			return
		}
		tr, err := pickTrack(&desc)
		if err != nil {
			return
		}
		dp, err := tr.depacketizer()
		if err != nil {
			return
		}
		dec, err := decode.NewStream(tr.codec, tr.params, decode.StreamOptions{FPS: 5})
		if err != nil {
			t.Fatal(err)
		}
		defer dec.Close()
		for i := 0; len(rtpData) >= 2; i++ {
			n := int(binary.BigEndian.Uint16(rtpData))
			rtpData = rtpData[2:]
			n = min(n, len(rtpData))
			var pkt rtp.Packet
			if pkt.Unmarshal(rtpData[:n]) == nil {
				if au, err := dp.decode(&pkt); err == nil {
					dec.Decode(au, time.Duration(i)*40*time.Millisecond, time.Now())
				}
			}
			rtpData = rtpData[n:]
		}
		dec.Flush()
	})
}
