/* Embeds the assembled probe image into the host program. */
	.section .rodata
	.balign 16
	.global pagelab_probe_image_begin
	.global pagelab_probe_image_end
pagelab_probe_image_begin:
	.incbin "probe.bin"
pagelab_probe_image_end:
	.section .note.GNU-stack,"",@progbits
